//! The values a key can hold.

/// A stored value. Strings only for now; lists, hashes, sets and sorted sets join as their
/// commands land, and `TYPE`/`WRONGTYPE` already go through [`Value::type_name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A binary-safe string. A `Vec` (not `Bytes`) so that APPEND and SETRANGE grow it in place
    /// with amortised doubling, and so a stored value never pins a connection's read buffer.
    Str(Vec<u8>),
}

impl Value {
    /// The name TYPE reports and SCAN ... TYPE filters on.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }
}
