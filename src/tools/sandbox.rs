//! `sandbox: true`: commands confined to the workspace with Landlock (Linux 5.13 or later).
//!
//! The ruleset is built once per run in the runner, as a file descriptor; each command applies
//! it to itself between `fork` and `exec` with two system calls (`PR_SET_NO_NEW_PRIVS`, then
//! `landlock_restrict_self`), which allocate nothing and are safe there. A confined command may
//! read and execute the system folders (`/usr`, `/bin`, `/lib*`, `/etc`, `/opt`, `/proc`, `/sys`,
//! `/dev`), write `/dev/null`-like devices, and read, write and create only inside the workspace
//! and `/tmp`. Everything else (home folders, the state dir, other projects) is out of reach.
//!
//! Where the kernel has no Landlock, [`Sandbox::new`] says so, and the run does not start: a
//! sandbox that silently does nothing would be worse than none.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const ACCESS_EXECUTE: u64 = 1 << 0;
const ACCESS_WRITE_FILE: u64 = 1 << 1;
const ACCESS_READ_FILE: u64 = 1 << 2;
const ACCESS_READ_DIR: u64 = 1 << 3;
/// Rights of ABI 1 (bits 0..=12), then REFER (2), TRUNCATE (3), IOCTL_DEV (5).
const ABI1_ALL: u64 = (1 << 13) - 1;
const ACCESS_REFER: u64 = 1 << 13;
const ACCESS_TRUNCATE: u64 = 1 << 14;
const ACCESS_IOCTL_DEV: u64 = 1 << 15;
const RULE_PATH_BENEATH: libc::c_int = 1;
const CREATE_RULESET_VERSION: u32 = 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// System folders a confined command may read and execute from.
const READ_ONLY: [&str; 11] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt", "/proc", "/sys", "/dev",
];
/// Devices a confined command may also write.
const WRITABLE_DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/tty", "/dev/full"];

/// A Landlock ruleset confining commands to one workspace.
#[derive(Debug)]
pub struct Sandbox {
    ruleset: OwnedFd,
    abi: i64,
}

/// Why `sandbox: true` cannot be honoured here.
#[derive(Debug, thiserror::Error)]
#[error("`sandbox: true` cannot be honoured on this machine: {0}; remove `sandbox: true` to run commands unconfined, or run on Linux 5.13+ with Landlock enabled")]
pub struct SandboxUnavailable(String);

impl Sandbox {
    /// The kernel's Landlock ABI version, or why this machine cannot confine commands.
    pub fn probe() -> Result<i64, SandboxUnavailable> {
        // SAFETY: with a null attribute and the VERSION flag the call only returns the ABI.
        let abi = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<RulesetAttr>(),
                0usize,
                CREATE_RULESET_VERSION,
            )
        };
        if abi < 1 {
            let err = io::Error::last_os_error();
            return Err(SandboxUnavailable(match err.raw_os_error() {
                Some(libc::ENOSYS) => "the kernel has no Landlock (it needs Linux 5.13 or later)".into(),
                Some(libc::EOPNOTSUPP) => "Landlock is disabled in this kernel (add `landlock` to the `lsm=` boot parameter)".into(),
                _ => format!("Landlock is not available ({err})"),
            }));
        }
        Ok(abi)
    }

    /// Builds the ruleset for `workspace`, or says why this machine cannot confine commands.
    pub fn new(workspace: &Path) -> Result<Self, SandboxUnavailable> {
        let abi = Self::probe()?;
        let mut all = ABI1_ALL;
        if abi >= 2 {
            all |= ACCESS_REFER;
        }
        if abi >= 3 {
            all |= ACCESS_TRUNCATE;
        }
        if abi >= 5 {
            all |= ACCESS_IOCTL_DEV;
        }
        let attr = RulesetAttr {
            handled_access_fs: all,
        };
        // SAFETY: `attr` is a valid ruleset attribute of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                std::mem::size_of::<RulesetAttr>(),
                0u32,
            )
        };
        if fd < 0 {
            return Err(SandboxUnavailable(format!(
                "a Landlock ruleset could not be created ({})",
                io::Error::last_os_error()
            )));
        }
        // SAFETY: the call returned a new file descriptor that nothing else owns.
        let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let sandbox = Self { ruleset, abi };
        let read_exec = ACCESS_EXECUTE | ACCESS_READ_FILE | ACCESS_READ_DIR;
        let file_rights = ACCESS_EXECUTE
            | ACCESS_WRITE_FILE
            | ACCESS_READ_FILE
            | if abi >= 3 { ACCESS_TRUNCATE } else { 0 }
            | if abi >= 5 { ACCESS_IOCTL_DEV } else { 0 };
        for dir in READ_ONLY {
            sandbox.allow(Path::new(dir), read_exec)?;
        }
        for device in WRITABLE_DEVICES {
            sandbox.allow(Path::new(device), file_rights & !ACCESS_EXECUTE)?;
        }
        for dir in [workspace, Path::new("/tmp")] {
            sandbox.allow(dir, all)?;
        }
        Ok(sandbox)
    }

    /// The Landlock ABI version of the kernel.
    pub fn abi(&self) -> i64 {
        self.abi
    }

    /// Allows `access` beneath `path`; a path that does not exist is skipped.
    fn allow(&self, path: &Path, access: u64) -> Result<(), SandboxUnavailable> {
        let Ok(file) = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(path)
        else {
            return Ok(());
        };
        let is_dir = file.metadata().map(|m| m.is_dir()).unwrap_or(false);
        // Directory-only rights on a file are refused by the kernel.
        let access = if is_dir {
            access
        } else {
            access
                & (ACCESS_EXECUTE
                    | ACCESS_WRITE_FILE
                    | ACCESS_READ_FILE
                    | ACCESS_TRUNCATE
                    | ACCESS_IOCTL_DEV)
        };
        let attr = PathBeneathAttr {
            allowed_access: access,
            parent_fd: file.as_raw_fd(),
        };
        // SAFETY: the ruleset and the path are open descriptors and `attr` is valid for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.ruleset.as_raw_fd(),
                RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0u32,
            )
        };
        if rc != 0 {
            return Err(SandboxUnavailable(format!(
                "a Landlock rule for {} was refused ({})",
                path.display(),
                io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Makes `cmd` confine itself before it runs.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        let fd = self.ruleset.as_raw_fd();
        // SAFETY: the closure runs in the child between fork and exec and only makes two system
        // calls, which are async-signal-safe; the ruleset descriptor is inherited by the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}
