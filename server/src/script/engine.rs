//! The Lua engine (placeholder: being written).
