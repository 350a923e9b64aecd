//! Swarm files: the one validation pass from a YAML tree to a [`SwarmPlan`].
//!
//! Every check lives here, in file order, and records its problems instead of stopping, so a user
//! sees all the errors of a file at once. Cross-field rules (topology, roles, the task graph) run
//! after the fields they need have been read.

use super::catalog::RoleCatalog;
use super::check::{did_you_mean, suggestion, Checker, Fields};
use super::yaml::{self, Node, Value};
use super::{
    AgentSlot, BudgetSettings, CheckpointSettings, Diagnostic, HookEvent, HookSettings,
    LlmSettings, LoadOptions, Loaded, MaxTokensField, MemorySettings, Prices, ProviderKind, Role,
    Severity, SpecError, SwarmPlan, TaskSpec, ToolName, Topology, MAX_AGENTS, MAX_AGENT_COUNT,
    MAX_TASKS,
};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

const TOP_KEYS: [&str; 16] = [
    "name",
    "description",
    "topology",
    "max_agents",
    "coordinator",
    "agents",
    "tasks",
    "memory",
    "checkpoint",
    "budget",
    "llm",
    "workspace",
    "allow_commands",
    "hooks",
    "mcp_servers",
    "sandbox",
];

/// Loads a swarm file, resolves the roles it names, and validates everything.
pub fn load_swarm(path: &Path, opts: &LoadOptions) -> Result<Loaded<SwarmPlan>, SpecError> {
    let text = yaml::read_text(path).map_err(|d| SpecError {
        diagnostics: vec![d],
    })?;
    let catalog = RoleCatalog::new(opts, path.parent());
    compile_swarm(&text, path, &catalog)
}

/// Loads `arg` as a swarm file when it names one; otherwise, when it is a bare name (no folder, no
/// extension), the built-in swarm of that name. Roles of a built-in swarm are searched in
/// `--roles-dir`, `./agents` and the built-in roles.
pub fn load_swarm_or_builtin(
    arg: &Path,
    opts: &LoadOptions,
) -> Result<Loaded<SwarmPlan>, SpecError> {
    let text = arg.to_string_lossy();
    let bare = arg.components().count() == 1 && arg.extension().is_none();
    if !bare || arg.exists() {
        return load_swarm(arg, opts);
    }
    match load_builtin_swarm(&text, opts) {
        Some(loaded) => loaded,
        None => {
            let names: Vec<&str> = super::catalog::builtin_swarms()
                .map(|(f, _)| super::catalog::swarm_name_of(f))
                .collect();
            let help = match did_you_mean(&text, names.iter().copied()) {
                Some(best) => format!("did you mean the built-in swarm `{best}`? (`swarm swarms list` shows them all)"),
                None => format!(
                    "name a swarm file (e.g. {text}.yaml) or a built-in swarm: {}",
                    names.join(", ")
                ),
            };
            Err(SpecError {
                diagnostics: vec![Diagnostic {
                    severity: Severity::Error,
                    file: arg.to_path_buf(),
                    line: 0,
                    column: 0,
                    message: "no such swarm file, and no built-in swarm has this name".into(),
                    help: Some(help),
                }],
            })
        }
    }
}

/// Loads the built-in swarm called `name`, or `None` when there is none.
pub fn load_builtin_swarm(
    name: &str,
    opts: &LoadOptions,
) -> Option<Result<Loaded<SwarmPlan>, SpecError>> {
    let (file, body) = super::catalog::builtin_swarm(name)?;
    let catalog = RoleCatalog::new(opts, None);
    Some(compile_swarm(
        body,
        &super::catalog::builtin_swarm_path(file),
        &catalog,
    ))
}

/// Validates the text of a swarm file; `file` is where diagnostics point.
pub(crate) fn compile_swarm(
    text: &str,
    file: &Path,
    catalog: &RoleCatalog,
) -> Result<Loaded<SwarmPlan>, SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: file.to_path_buf(),
                line: 1,
                column: 1,
                message: "the swarm file is empty".into(),
                help: Some(
                    "write at least `name:`, `topology:` and `agents:`; `swarm init` writes a starting point"
                        .into(),
                ),
            }],
        });
    }
    let root = yaml::parse(text, file, 1).map_err(|d| SpecError {
        diagnostics: vec![d],
    })?;
    let mut check = Checker::new(file);
    let plan = check_swarm(&mut check, &root, catalog).map(|mut plan| {
        plan.source_path = file.to_path_buf();
        plan.source_hash = source_hash(text.as_bytes());
        plan
    });
    match plan {
        Some(plan) if !check.has_errors() => Ok(Loaded {
            value: plan,
            warnings: check.diagnostics,
        }),
        _ => Err(SpecError {
            diagnostics: check.diagnostics,
        }),
    }
}

/// A stable 64-bit FNV-1a hash: enough to notice that a swarm file changed since a session began.
pub fn source_hash(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn is_swarm_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_task_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A roster line as written, with where it is.
struct Slot<'a> {
    role: String,
    at: &'a Node,
    count: u32,
}

/// A task as written, with where its parts are.
struct RawTask<'a> {
    spec: TaskSpec,
    id_at: &'a Node,
    role_at: &'a Node,
    depends_at: Vec<&'a Node>,
}

fn check_swarm(check: &mut Checker, root: &Node, catalog: &RoleCatalog) -> Option<SwarmPlan> {
    if matches!(root.value, Value::Null) {
        check.error(
            root,
            "the swarm file has no settings",
            "write at least `name:`, `topology:` and `agents:`",
        );
        return None;
    }
    let fields = check.fields(root, "the swarm file", &TOP_KEYS, false)?;

    let name = match fields.get("name") {
        Some(node) => check.string(node, "`name`").filter(|name| {
            let ok = is_swarm_name(name);
            if !ok {
                let fixed: String = name
                    .to_ascii_lowercase()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                check.error(
                    node,
                    format!("swarm name `{name}` may only hold lowercase letters, digits and `-`"),
                    format!("write e.g. `name: {fixed}`"),
                );
            }
            ok
        }),
        None => {
            check.missing(
                &fields,
                "name",
                "the swarm file",
                "add `name: my-swarm` (lowercase letters, digits, `-`)",
            );
            None
        }
    };
    let description = fields
        .get("description")
        .and_then(|n| check.string(n, "`description`"))
        .unwrap_or_default();

    let topology = match fields.get("topology") {
        Some(node) => match check.string(node, "`topology`").as_deref() {
            Some("mesh") => Some(Topology::Mesh),
            Some("hierarchical") => Some(Topology::Hierarchical),
            Some(other) => {
                check.error(
                    node,
                    format!("unknown topology `{other}`"),
                    format!(
                        "{} (mesh: agents work through the task graph; hierarchical: a coordinator plans)",
                        suggestion(other, &["mesh", "hierarchical"])
                    ),
                );
                None
            }
            None => None,
        },
        None => {
            check.missing(
                &fields,
                "topology",
                "the swarm file",
                "add `topology: hierarchical` (a coordinator plans) or `topology: mesh` (a fixed task graph)",
            );
            None
        }
    };

    let slots = match fields.get("agents") {
        Some(node) => check_roster(check, node),
        None => {
            check.missing(
                &fields,
                "agents",
                "the swarm file",
                "add `agents:` with a list of `- role: NAME` lines (`swarm roles list` shows the roles)",
            );
            Vec::new()
        }
    };
    let coordinator = fields
        .get("coordinator")
        .and_then(|n| check.string(n, "`coordinator`").map(|s| (s, n)));
    let tasks = fields
        .get("tasks")
        .map(|n| check_tasks(check, n))
        .unwrap_or_default();

    let max_agents = match fields.get("max_agents") {
        Some(node) => check.integer_u32(node, "`max_agents`", 1),
        None => {
            let coordinator_extra = coordinator
                .as_ref()
                .filter(|(c, _)| !slots.iter().any(|s| s.role == *c))
                .map_or(0, |_| 1);
            Some(
                slots
                    .iter()
                    .map(|s| s.count)
                    .fold(coordinator_extra, u32::saturating_add)
                    .max(1),
            )
        }
    };

    let memory_namespace_default = name.clone().unwrap_or_default();
    let memory = check_memory(check, fields.get("memory"), memory_namespace_default);
    let checkpoint = check_checkpoint(check, fields.get("checkpoint"));
    let budget = check_budget(check, fields.get("budget"));
    let llm = check_llm(check, fields.get("llm"));
    let workspace_per_session = fields.get("workspace").is_none();
    let workspace = fields
        .get("workspace")
        .map_or(Some(PathBuf::from("./workspace")), |n| {
            check.string(n, "`workspace`").map(PathBuf::from)
        });
    let allow_commands = fields
        .get("allow_commands")
        .map_or(Some(false), |n| check.boolean(n, "`allow_commands`"));
    let sandbox = fields
        .get("sandbox")
        .map_or(Some(false), |n| check.boolean(n, "`sandbox`"));
    let hooks = check_hooks(check, fields.get("hooks"));
    let source = check.file.display().to_string();
    let mcp_servers = super::mcp::check_mcp_servers(check, fields.get("mcp_servers"), &source);

    let roles = resolve_roles(check, catalog, &slots, coordinator.as_ref());
    if let Some(topology) = topology {
        check_topology(
            check,
            &fields,
            topology,
            coordinator.as_ref(),
            &tasks,
            &roles,
        );
    }
    check_task_graph(
        check,
        &tasks,
        &slots,
        coordinator.as_ref().map(|(c, _)| c.as_str()),
    );
    if topology == Some(Topology::Mesh) && !tasks.is_empty() {
        for slot in &slots {
            if !tasks.iter().any(|t| t.spec.role == slot.role) {
                check.warning(
                    slot.at,
                    format!(
                        "no task is for role `{}`: its agents will have nothing to do",
                        slot.role
                    ),
                    "give it a task, or remove it from `agents`",
                );
            }
        }
    }

    Some(SwarmPlan {
        name: name?,
        description,
        topology: topology?,
        max_agents: max_agents?,
        coordinator: coordinator.map(|(c, _)| c),
        agents: slots
            .iter()
            .map(|s| AgentSlot {
                role: s.role.clone(),
                count: s.count,
            })
            .collect(),
        roles,
        tasks: tasks.into_iter().map(|t| t.spec).collect(),
        memory: memory?,
        checkpoint: checkpoint?,
        budget: budget?,
        llm: llm?,
        workspace: workspace?,
        workspace_per_session,
        allow_commands: allow_commands?,
        sandbox: sandbox?,
        hooks: hooks?,
        mcp_servers: mcp_servers?,
        source_path: PathBuf::new(),
        source_hash: String::new(),
        continues_from: None,
    })
}

fn check_roster<'a>(check: &mut Checker, node: &'a Node) -> Vec<Slot<'a>> {
    let Value::Seq(items) = &node.value else {
        check.error(
            node,
            format!("`agents` must be a list, found {}", node.value.kind()),
            "write one `- role: NAME` line per role, with `count: N` for more than one agent",
        );
        return Vec::new();
    };
    if items.is_empty() {
        check.error(
            node,
            "`agents` is empty",
            "list at least one role: `- role: NAME`",
        );
    }
    let mut slots: Vec<Slot<'a>> = Vec::new();
    for item in items {
        // `- tester` is shorthand for `- role: tester`.
        let slot = if let Value::Str(_) = item.value {
            check.string(item, "a role in `agents`").map(|role| Slot {
                role,
                at: item,
                count: 1,
            })
        } else {
            check
                .fields(item, "an entry of `agents`", &["role", "count"], false)
                .and_then(|f| {
                    // A bad count is reported here; the role still counts as listed so that
                    // tasks for it are not reported as well.
                    let count = f
                        .get("count")
                        .map_or(Some(1), |n| {
                            let count = check.integer_u32(n, "`count`", 1)?;
                            if count > MAX_AGENT_COUNT {
                                check.error(
                                    n,
                                    format!("`count` is {count}; the limit is {MAX_AGENT_COUNT} agents of one role"),
                                    format!("write a count up to {MAX_AGENT_COUNT}; more agents rarely finish sooner, and each one costs its own calls"),
                                );
                                return None;
                            }
                            Some(count)
                        })
                        .unwrap_or(1);
                    let role_at = match f.get("role") {
                        Some(n) => n,
                        None => {
                            check.missing(&f, "role", "this entry of `agents`", "add `role: NAME`");
                            return None;
                        }
                    };
                    let role = check.string(role_at, "`role`")?;
                    Some(Slot {
                        role,
                        at: role_at,
                        count,
                    })
                })
        };
        let Some(slot) = slot else { continue };
        if slots.iter().any(|s| s.role == slot.role) {
            check.error(
                slot.at,
                format!("role `{}` is listed twice in `agents`", slot.role),
                "list each role once and set `count:` for more agents of it",
            );
            continue;
        }
        slots.push(slot);
    }
    let total = slots.iter().map(|s| s.count).fold(0, u32::saturating_add);
    if total > MAX_AGENTS {
        check.error(
            node,
            format!("the roster has {total} agents; the limit is {MAX_AGENTS}"),
            "lower the `count:` of some roles",
        );
    }
    slots
}

fn check_tasks<'a>(check: &mut Checker, node: &'a Node) -> Vec<RawTask<'a>> {
    let Value::Seq(items) = &node.value else {
        check.error(
            node,
            format!("`tasks` must be a list, found {}", node.value.kind()),
            "write one `- id: ...` entry per task, with `role:` and `description:`",
        );
        return Vec::new();
    };
    if items.len() > MAX_TASKS {
        check.error(
            node,
            format!(
                "`tasks` lists {} tasks; the limit is {MAX_TASKS}",
                items.len()
            ),
            "split the work into several swarms, or let a coordinator plan it",
        );
        return Vec::new();
    }
    let mut tasks: Vec<RawTask<'a>> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for item in items {
        let Some(f) = check.fields(
            item,
            "a task",
            &["id", "role", "description", "depends_on"],
            false,
        ) else {
            continue;
        };
        let id = match f.get("id") {
            Some(n) => check.string(n, "a task's `id`").map(|s| (s, n)),
            None => {
                check.missing(
                    &f,
                    "id",
                    "this task",
                    "add `id: short-name` (lowercase letters, digits, `-`, `_`)",
                );
                None
            }
        };
        let role = match f.get("role") {
            Some(n) => check.string(n, "a task's `role`").map(|s| (s, n)),
            None => {
                check.missing(
                    &f,
                    "role",
                    "this task",
                    "add `role: NAME`, one of the roles in `agents`",
                );
                None
            }
        };
        let description = match f.get("description") {
            Some(n) => check.string(n, "a task's `description`").inspect(|text| {
                check_placeholders(check, n, text);
            }),
            None => {
                check.missing(
                    &f,
                    "description",
                    "this task",
                    "add `description:` saying what the task must deliver; `{goal}` is replaced by --goal",
                );
                None
            }
        };
        let depends = f
            .get("depends_on")
            .map(|n| match &n.value {
                // `depends_on: api` is shorthand for a list of one.
                Value::Str(s) => vec![(s.clone(), n)],
                _ => check.string_list(n, "`depends_on`"),
            })
            .unwrap_or_default();
        let (Some((id, id_at)), Some((role, role_at)), Some(description)) = (id, role, description)
        else {
            continue;
        };
        // A badly formed id is reported but the task stays in the graph, so that tasks
        // depending on it are not reported as well.
        if !is_task_id(&id) {
            check.error(
                id_at,
                format!("task id `{id}` may only hold lowercase letters, digits, `-` and `_`"),
                "rename the task, e.g. `id: write-tests`",
            );
        }
        // A set, not a scan of the tasks so far: a scan is quadratic in the number of tasks.
        if !seen.insert(id.clone()) {
            check.error(
                id_at,
                format!("task id `{id}` is used twice"),
                "give every task its own id",
            );
            continue;
        }
        let (depends_on, depends_at): (Vec<String>, Vec<&Node>) = depends.into_iter().unzip();
        tasks.push(RawTask {
            spec: TaskSpec {
                id,
                role,
                description,
                depends_on,
            },
            id_at,
            role_at,
            depends_at,
        });
    }
    tasks
}

/// The placeholders a task description may use.
const PLACEHOLDERS: [&str; 1] = ["goal"];

/// `{name}` in a description is a placeholder; an unknown one is a typo that would reach the
/// agent as written.
fn check_placeholders(check: &mut Checker, at: &Node, text: &str) {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        let is_word = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if is_word && !PLACEHOLDERS.contains(&name) {
            let help = match did_you_mean(name, PLACEHOLDERS.iter().copied()) {
                Some(best) => format!("did you mean `{{{best}}}`?"),
                None => "the only placeholder is `{goal}` (filled by --goal)".to_string(),
            };
            check.error(
                at,
                format!("unknown placeholder `{{{name}}}` in a task's description"),
                help,
            );
        }
        rest = &after[close + 1..];
    }
}

fn resolve_roles(
    check: &mut Checker,
    catalog: &RoleCatalog,
    slots: &[Slot<'_>],
    coordinator: Option<&(String, &Node)>,
) -> BTreeMap<String, Role> {
    let mut roles = BTreeMap::new();
    let wanted = slots
        .iter()
        .map(|s| (s.role.as_str(), s.at))
        .chain(coordinator.map(|(c, n)| (c.as_str(), *n)));
    let mut known_names: Option<Vec<String>> = None;
    for (name, at) in wanted {
        if roles.contains_key(name) {
            continue;
        }
        match catalog.lookup(name) {
            Some(Ok(loaded)) => {
                check.diagnostics.extend(loaded.warnings);
                roles.insert(name.to_owned(), loaded.value);
            }
            Some(Err(e)) => {
                check.error(
                    at,
                    format!("role `{name}` could not be loaded"),
                    "fix the role file's errors reported with it",
                );
                check.diagnostics.extend(e.diagnostics);
            }
            None => {
                let names = known_names.get_or_insert_with(|| catalog.names());
                let help = match did_you_mean(name, names.iter().map(String::as_str)) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!(
                        "add {name}.md to an agents/ folder beside the swarm file, or pick a role from `swarm roles list`"
                    ),
                };
                check.error(at, format!("unknown role `{name}`"), help);
            }
        }
    }
    roles
}

fn check_topology(
    check: &mut Checker,
    fields: &Fields<'_>,
    topology: Topology,
    coordinator: Option<&(String, &Node)>,
    tasks: &[RawTask<'_>],
    roles: &BTreeMap<String, Role>,
) {
    if topology == Topology::Hierarchical {
        for task in tasks {
            let id = task.spec.id.as_str();
            if [crate::runtime::PLAN_TASK, crate::runtime::SYNTHESIS_TASK].contains(&id) {
                check.error(
                    task.id_at,
                    format!("task id `{id}` is reserved in a hierarchical swarm"),
                    "the runtime adds the coordinator's `plan` and `synthesis` tasks; give this task another id",
                );
            }
        }
    }
    match topology {
        Topology::Hierarchical => match coordinator {
            None => check.missing(
                fields,
                "coordinator",
                "a hierarchical swarm",
                "add `coordinator: ROLE`, the role that plans and assigns tasks (e.g. team-coordinator), or use `topology: mesh` with a task graph",
            ),
            Some((name, at)) => {
                let lacks_create_task = roles
                    .get(name)
                    .is_some_and(|r| !r.tools.contains(&ToolName::CreateTask));
                if tasks.is_empty() && lacks_create_task {
                    check.error(
                        at,
                        format!("coordinator `{name}` cannot plan: its role does not list `create_task` and the swarm has no tasks"),
                        "pick a coordinator role that lists `create_task` (e.g. team-coordinator), or add `tasks:`",
                    );
                }
            }
        },
        Topology::Mesh => {
            if let Some((_, at)) = coordinator {
                check.error(
                    at,
                    "a mesh swarm has no coordinator",
                    "remove `coordinator`, or use `topology: hierarchical`",
                );
            }
            if tasks.is_empty() {
                check.error(
                    fields.get("tasks").unwrap_or(fields.at),
                    "a mesh swarm needs tasks: nobody plans them",
                    "add `tasks:` with `id`, `role`, `description` and `depends_on`, or use `topology: hierarchical` with a coordinator",
                );
            }
        }
    }
}

fn check_task_graph(
    check: &mut Checker,
    tasks: &[RawTask<'_>],
    slots: &[Slot<'_>],
    coordinator: Option<&str>,
) {
    let mut assignable: Vec<&str> = slots.iter().map(|s| s.role.as_str()).collect();
    assignable.extend(coordinator);
    let ids: Vec<&str> = tasks.iter().map(|t| t.spec.id.as_str()).collect();
    let mut graph = DiGraph::<usize, ()>::new();
    let index: HashMap<&str, NodeIndex> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.spec.id.as_str(), graph.add_node(i)))
        .collect();
    for task in tasks {
        if !slots.is_empty() && !assignable.contains(&task.spec.role.as_str()) {
            check.error(
                task.role_at,
                format!(
                    "task `{}` is for role `{}`, which is not in `agents`",
                    task.spec.id, task.spec.role
                ),
                match did_you_mean(&task.spec.role, assignable.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("add `- role: {}` to `agents`", task.spec.role),
                },
            );
        }
        for (dep, at) in task.spec.depends_on.iter().zip(&task.depends_at) {
            if *dep == task.spec.id {
                check.error(
                    at,
                    format!("task `{dep}` depends on itself"),
                    "remove it from its own `depends_on`",
                );
                continue;
            }
            match index.get(dep.as_str()) {
                Some(&from) => {
                    graph.add_edge(from, index[task.spec.id.as_str()], ());
                }
                None => check.error(
                    at,
                    format!(
                        "task `{}` depends on `{dep}`, which is not a task of this swarm",
                        task.spec.id
                    ),
                    suggestion(dep, &ids),
                ),
            }
        }
    }
    for component in petgraph::algo::tarjan_scc(&graph) {
        if component.len() < 2 {
            continue;
        }
        let cycle = cycle_through(&graph, &component);
        let names: Vec<&str> = cycle.iter().map(|&n| ids[graph[n]]).collect();
        let first = &tasks[graph[cycle[0]]];
        check.error(
            first.id_at,
            format!(
                "tasks depend on each other in a cycle: {} (each waits for the next)",
                names.join(" -> ")
            ),
            "remove one of these `depends_on` entries so the tasks can start",
        );
    }
}

/// A closed path through a strongly connected component, starting and ending at the same task,
/// following "depends on" (edges reversed).
fn cycle_through(graph: &DiGraph<usize, ()>, component: &[NodeIndex]) -> Vec<NodeIndex> {
    let start = component
        .iter()
        .copied()
        .min_by_key(|n| graph[*n])
        .unwrap_or(component[0]);
    let mut path = vec![start];
    let mut current = start;
    // Within a strongly connected component every node has a predecessor in it; walking
    // predecessors until a node repeats yields a cycle.
    while let Some(next) = graph
        .neighbors_directed(current, petgraph::Direction::Incoming)
        .filter(|n| component.contains(n))
        .min_by_key(|n| graph[*n])
    {
        if let Some(pos) = path.iter().position(|&n| n == next) {
            let mut cycle = path.split_off(pos);
            cycle.push(next);
            return cycle;
        }
        path.push(next);
        current = next;
    }
    path
}

fn check_memory(
    check: &mut Checker,
    node: Option<&Node>,
    default_namespace: String,
) -> Option<MemorySettings> {
    let mut memory = MemorySettings {
        namespace: default_namespace,
        ttl: None,
        project: Vec::new(),
    };
    let Some(node) = node else {
        return Some(memory);
    };
    let f = check.fields(node, "`memory`", &["namespace", "ttl", "project"], false)?;
    if let Some(n) = f.get("project") {
        memory.project = check
            .string_list(n, "`memory.project`")
            .into_iter()
            .map(|(s, _)| s)
            .collect();
    }
    if let Some(n) = f.get("namespace") {
        memory.namespace = check.string(n, "`memory.namespace`")?;
    }
    if let Some(n) = f.get("ttl") {
        memory.ttl = check.duration(n, "`memory.ttl`", true)?;
    }
    Some(memory)
}

fn check_checkpoint(check: &mut Checker, node: Option<&Node>) -> Option<CheckpointSettings> {
    let mut settings = CheckpointSettings::default();
    let Some(node) = node else {
        return Some(settings);
    };
    let f = check.fields(node, "`checkpoint`", &["interval"], false)?;
    if let Some(n) = f.get("interval") {
        settings.interval = check.positive_duration(n, "`checkpoint.interval`")?;
    }
    Some(settings)
}

fn check_budget(check: &mut Checker, node: Option<&Node>) -> Option<BudgetSettings> {
    let mut budget = BudgetSettings::default();
    let Some(node) = node else {
        return Some(budget);
    };
    let f = check.fields(
        node,
        "`budget`",
        &["tokens", "llm_calls", "time", "usd", "warn_at", "stop_at"],
        false,
    )?;
    let mut ok = true;
    if let Some(n) = f.get("tokens") {
        budget.tokens = check.integer(n, "`budget.tokens`", 1);
        ok &= budget.tokens.is_some();
    }
    if let Some(n) = f.get("llm_calls") {
        budget.llm_calls = check.integer(n, "`budget.llm_calls`", 1);
        ok &= budget.llm_calls.is_some();
    }
    if let Some(n) = f.get("time") {
        budget.time = check.positive_duration(n, "`budget.time`");
        ok &= budget.time.is_some();
    }
    if let Some(n) = f.get("usd") {
        budget.usd = check.number(n, "`budget.usd`");
        if let Some(usd) = budget.usd.filter(|usd| *usd <= 0.0) {
            check.error(
                n,
                format!("`budget.usd` is {usd}, it must be more than 0"),
                "write a positive amount such as 5.0",
            );
            budget.usd = None;
        }
        ok &= budget.usd.is_some();
    }
    for (key, slot) in [
        ("warn_at", &mut budget.warn_at),
        ("stop_at", &mut budget.stop_at),
    ] {
        let Some(n) = f.get(key) else { continue };
        match check.number(n, &format!("`budget.{key}`")) {
            Some(x) if x > 0.0 && x <= 1.0 => *slot = x,
            Some(x) => {
                check.error(
                    n,
                    format!("`budget.{key}` is {x}, it must be a fraction of the limits, above 0 and at most 1"),
                    "write e.g. warn_at: 0.7 and stop_at: 0.9",
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    if ok && budget.warn_at >= budget.stop_at {
        check.error(
            f.get("warn_at").or(f.get("stop_at")).unwrap_or(node),
            format!(
                "`budget.warn_at` ({}) must be below `budget.stop_at` ({})",
                budget.warn_at, budget.stop_at
            ),
            "the monitor warns first and stops later: e.g. warn_at: 0.7, stop_at: 0.9",
        );
        ok = false;
    }
    ok.then_some(budget)
}

fn check_llm(check: &mut Checker, node: Option<&Node>) -> Option<LlmSettings> {
    let mut llm = LlmSettings::default();
    let Some(node) = node else { return Some(llm) };
    let f = check.fields(
        node,
        "`llm`",
        &[
            "provider",
            "model",
            "base_url",
            "stream",
            "max_concurrency",
            "requests_per_minute",
            "tokens_per_minute",
            "prices",
            "prompt_cache",
            "max_retries",
            "timeout",
            "max_tokens",
            "max_tokens_field",
            "thinking",
            "model_aliases",
        ],
        false,
    )?;
    let mut ok = true;
    if let Some(n) = f.get("provider") {
        llm.provider =
            check
                .string(n, "`llm.provider`")
                .and_then(|p| match p.parse::<ProviderKind>() {
                    Ok(kind) => Some(kind),
                    Err(message) => {
                        check.error(
                            n,
                            message,
                            suggestion(&p, &["openai", "anthropic", "simulated"]),
                        );
                        None
                    }
                });
        ok &= llm.provider.is_some();
    }
    if let Some(n) = f.get("model") {
        llm.model = check.string(n, "`llm.model`");
        ok &= llm.model.is_some();
    }
    if let Some(n) = f.get("base_url") {
        llm.base_url =
            check
                .string(n, "`llm.base_url`")
                .and_then(|text| match url::Url::parse(&text) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => Some(text),
                    Ok(u) => {
                        check.error(
                            n,
                            format!(
                                "`llm.base_url` uses `{}:`; the API is reached over http or https",
                                u.scheme()
                            ),
                            "write e.g. http://localhost:11434/v1",
                        );
                        None
                    }
                    Err(e) => {
                        check.error(
                            n,
                            format!("`llm.base_url` `{text}` is not a URL: {e}"),
                            "write a full URL with its scheme, e.g. http://localhost:11434/v1",
                        );
                        None
                    }
                });
        ok &= llm.base_url.is_some();
    }
    if let Some(n) = f.get("stream") {
        match check.boolean(n, "`llm.stream`") {
            Some(b) => llm.stream = b,
            None => ok = false,
        }
    }
    if let Some(n) = f.get("prompt_cache") {
        match check.boolean(n, "`llm.prompt_cache`") {
            Some(b) => llm.prompt_cache = b,
            None => ok = false,
        }
    }
    for (key, slot) in [
        ("max_concurrency", &mut llm.max_concurrency),
        ("requests_per_minute", &mut llm.requests_per_minute),
        ("tokens_per_minute", &mut llm.tokens_per_minute),
    ] {
        if let Some(n) = f.get(key) {
            *slot = check.integer_u32(n, &format!("`llm.{key}`"), 1);
            ok &= slot.is_some();
        }
    }
    if let Some(n) = f.get("max_retries") {
        match check.integer_u32(n, "`llm.max_retries`", 0) {
            Some(v) => llm.max_retries = v,
            None => ok = false,
        }
    }
    if let Some(n) = f.get("max_tokens") {
        match check.integer_u32(n, "`llm.max_tokens`", 1) {
            Some(v) => llm.max_tokens = v,
            None => ok = false,
        }
    }
    if let Some(n) = f.get("max_tokens_field") {
        let names: Vec<&str> = MaxTokensField::ALL.iter().map(|f| f.as_str()).collect();
        match check.string(n, "`llm.max_tokens_field`") {
            Some(text) => match MaxTokensField::ALL.into_iter().find(|f| f.as_str() == text) {
                Some(field) => llm.max_tokens_field = Some(field),
                None => {
                    check.error(
                        n,
                        format!("`llm.max_tokens_field` is `{text}`, which no API knows"),
                        format!(
                            "write one of: {} (default: max_completion_tokens at api.openai.com, max_tokens elsewhere)",
                            names.join(", ")
                        ),
                    );
                    ok = false;
                }
            },
            None => ok = false,
        }
    }
    if let Some(n) = f.get("thinking") {
        match check_thinking(check, n, llm.max_tokens) {
            Some(budget) => llm.thinking = budget,
            None => ok = false,
        }
    }
    if let Some(n) = f.get("timeout") {
        match check.positive_duration(n, "`llm.timeout`") {
            Some(v) => llm.timeout = v,
            None => ok = false,
        }
    }
    if let Some(n) = f.get("prices") {
        llm.prices = check_prices(check, n);
        ok &= llm.prices.is_some();
    }
    if let Some(n) = f.get("model_aliases") {
        match &n.value {
            Value::Map(pairs) => {
                for (key, value) in pairs {
                    let alias = check.string(key, "an alias in `llm.model_aliases`");
                    let id = check.string(value, "a model id in `llm.model_aliases`");
                    match (alias, id) {
                        (Some(alias), Some(id)) => {
                            llm.model_aliases.insert(alias, id);
                        }
                        _ => ok = false,
                    }
                }
            }
            other => {
                check.error(
                    n,
                    format!(
                        "`llm.model_aliases` must be a mapping, found {}",
                        other.kind()
                    ),
                    "write e.g. `model_aliases: { sonnet: qwen2.5-coder:32b, haiku: llama3.2 }`",
                );
                ok = false;
            }
        }
    }
    ok.then_some(llm)
}

/// The smallest thinking budget the Messages API takes.
const MIN_THINKING_BUDGET: u32 = 1024;

/// `llm.thinking`: `true` / `false`, or `{budget_tokens: N}`; the budget must be at least the
/// API's 1024 and below `max_tokens` (thinking counts against it). `true` takes half of
/// `max_tokens`, at least 1024.
fn check_thinking(check: &mut Checker, node: &Node, max_tokens: u32) -> Option<Option<u32>> {
    let (budget, at) = match &node.value {
        Value::Map(_) => {
            let f = check.fields(node, "`llm.thinking`", &["budget_tokens"], false)?;
            let Some(n) = f.get("budget_tokens") else {
                check.error(
                    node,
                    "`llm.thinking` has no `budget_tokens`",
                    "write e.g. `thinking: { budget_tokens: 2048 }`, or `thinking: true`",
                );
                return None;
            };
            (check.integer_u32(n, "`llm.thinking.budget_tokens`", 1)?, n)
        }
        _ => match check.boolean(node, "`llm.thinking`")? {
            false => return Some(None),
            true => ((max_tokens / 2).max(MIN_THINKING_BUDGET), node),
        },
    };
    if budget < MIN_THINKING_BUDGET || budget >= max_tokens {
        check.error(
            at,
            format!(
                "the thinking budget is {budget} tokens; it must be at least {MIN_THINKING_BUDGET} and below `llm.max_tokens` ({max_tokens})"
            ),
            "raise `llm.max_tokens` or set `thinking: { budget_tokens: N }` in that range",
        );
        return None;
    }
    Some(Some(budget))
}

fn check_prices(check: &mut Checker, node: &Node) -> Option<Prices> {
    let f = check.fields(
        node,
        "`llm.prices`",
        &[
            "input_per_mtok",
            "output_per_mtok",
            "cache_write_per_mtok",
            "cache_read_per_mtok",
        ],
        false,
    )?;
    let mut prices = Prices::default();
    let mut ok = true;
    let price = |check: &mut Checker, key: &str| -> Option<Option<f64>> {
        let Some(n) = f.get(key) else {
            return Some(None);
        };
        match check.number(n, &format!("`llm.prices.{key}`")) {
            Some(x) if x >= 0.0 => Some(Some(x)),
            Some(x) => {
                check.error(
                    n,
                    format!("`llm.prices.{key}` is {x}; a price cannot be negative"),
                    "write the price in US dollars per million tokens, e.g. 0.15",
                );
                None
            }
            None => None,
        }
    };
    for (key, slot) in [
        ("input_per_mtok", &mut prices.input_per_mtok),
        ("output_per_mtok", &mut prices.output_per_mtok),
    ] {
        match price(check, key) {
            Some(Some(x)) => *slot = x,
            Some(None) => {
                check.missing(
                    &f,
                    key,
                    "`llm.prices`",
                    "give both input_per_mtok and output_per_mtok, in US dollars per million tokens",
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    for (key, slot) in [
        ("cache_write_per_mtok", &mut prices.cache_write_per_mtok),
        ("cache_read_per_mtok", &mut prices.cache_read_per_mtok),
    ] {
        match price(check, key) {
            Some(x) => *slot = x,
            None => ok = false,
        }
    }
    ok.then_some(prices)
}

fn check_hooks(check: &mut Checker, node: Option<&Node>) -> Option<HookSettings> {
    let mut hooks = HookSettings::default();
    let Some(node) = node else { return Some(hooks) };
    let mut known: Vec<&str> = HookEvent::ALL.iter().map(|e| e.as_str()).collect();
    known.push("timeout");
    let f = check.fields(node, "`hooks`", &known, false)?;
    let mut ok = true;
    for event in HookEvent::ALL {
        let Some(n) = f.get(event.as_str()) else {
            continue;
        };
        match check.string(n, &format!("the `{}` hook", event.as_str())) {
            Some(command) => {
                hooks.commands.insert(event, command);
            }
            None => ok = false,
        }
    }
    if let Some(n) = f.get("timeout") {
        match check.positive_duration(n, "`hooks.timeout`") {
            Some(t) => hooks.timeout = t,
            None => ok = false,
        }
    }
    ok.then_some(hooks)
}
