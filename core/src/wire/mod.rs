//! Wire formats, separate from protocol logic: the preface, the record layer that
//! carries frames with integrity checks, the frames themselves and the handshake
//! parameters. Nothing here keeps connection state.

pub mod codec;
pub mod frame;
pub mod params;
pub mod preface;
pub mod record;
