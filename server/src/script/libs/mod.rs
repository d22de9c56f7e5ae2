//! The libraries Redis makes available to scripts (placeholder: being written).

/// Registers `cjson`, `cmsgpack`, `bit` and `struct` as globals of `lua` (temporary stub until
/// the libraries land; the engine calls it when it builds a state).
pub fn install(_: &mlua::Lua) -> mlua::Result<()> {
    Ok(())
}
