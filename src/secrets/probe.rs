//! Looks at every string a value would serialize, without encoding anything: the check for a
//! known secret in an event costs a walk over its strings instead of a JSON encoding of it.

use serde::ser::{self, Serialize};
use std::fmt;

/// Whether `test` holds for any string (or map key, or char) `value` serializes.
pub(super) fn any_str<T: Serialize + ?Sized>(value: &T, test: &dyn Fn(&str) -> bool) -> bool {
    let mut probe = Probe { test, found: false };
    // An error is only ever `Found`, which stops the walk early.
    let _ = value.serialize(&mut probe);
    probe.found
}

struct Probe<'a> {
    test: &'a dyn Fn(&str) -> bool,
    found: bool,
}

/// Ends the walk at the first match.
#[derive(Debug)]
struct Found;

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("found")
    }
}

impl std::error::Error for Found {}

impl ser::Error for Found {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Found
    }
}

impl Probe<'_> {
    fn check(&mut self, text: &str) -> Result<(), Found> {
        if (self.test)(text) {
            self.found = true;
            Err(Found)
        } else {
            Ok(())
        }
    }
}

macro_rules! ignore {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(fn $name(self, _: $ty) -> Result<(), Found> { Ok(()) })*
    };
}

impl<'p> ser::Serializer for &mut Probe<'p> {
    type Ok = ();
    type Error = Found;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    ignore!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_f32: f32,
        serialize_f64: f64,
        serialize_bytes: &[u8],
        serialize_unit_struct: &'static str,
    );

    fn serialize_char(self, v: char) -> Result<(), Found> {
        self.check(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), Found> {
        self.check(v)
    }

    fn serialize_none(self) -> Result<(), Found> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Found> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Found> {
        Ok(())
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Found> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Found> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), Found> {
        value.serialize(self)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Found> {
        Ok(self)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self, Found> {
        Ok(self)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Found> {
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Found> {
        Ok(self)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self, Found> {
        Ok(self)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Found> {
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Found> {
        Ok(self)
    }
}

/// The compound parts walk each element (or field) with the same probe.
macro_rules! walk_each {
    ($($part:ident: $method:ident),* $(,)?) => {$(
        impl ser::$part for &mut Probe<'_> {
            type Ok = ();
            type Error = Found;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Found> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Found> {
                Ok(())
            }
        }
    )*};
}

walk_each!(
    SerializeSeq: serialize_element,
    SerializeTuple: serialize_element,
    SerializeTupleStruct: serialize_field,
    SerializeTupleVariant: serialize_field,
);

/// Struct fields: the names are the type's own, only the values are looked at.
macro_rules! walk_fields {
    ($($part:ident),* $(,)?) => {$(
        impl ser::$part for &mut Probe<'_> {
            type Ok = ();
            type Error = Found;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                _: &'static str,
                value: &T,
            ) -> Result<(), Found> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Found> {
                Ok(())
            }
        }
    )*};
}

walk_fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for &mut Probe<'_> {
    type Ok = ();
    type Error = Found;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Found> {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Found> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Found> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::any_str;
    use serde_json::json;

    #[test]
    fn finds_a_string_anywhere_and_nothing_else() {
        let value = json!({"a": [1, {"deep": ["x", "the KEY-123 here"]}], "n": 5});
        assert!(any_str(&value, &|s| s.contains("KEY-123")));
        assert!(!any_str(&value, &|s| s.contains("KEY-124")));
        // Map keys count too; numbers do not.
        assert!(any_str(&json!({"KEY-123": 1}), &|s| s.contains("KEY-123")));
        assert!(!any_str(&json!({"k": 123}), &|s| s.contains("123")));
    }
}
