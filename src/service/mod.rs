//! What running as a system service needs, apart from mounting itself:
//! detaching ([`daemon`]), telling systemd we are ready ([`notify`]),
//! logging to stderr or the journal ([`logger`]), and dropping to `--user`
//! with a helper that unmounts if we die ([`privileges`]).

pub mod daemon;
pub mod logger;
pub mod notify;
pub mod privileges;
