//! Ports for the servers a test starts.

use std::net::TcpListener;

/// Where [`free_port`] looks: below Linux's default ephemeral range (32768-60999), from which the
/// OS gives every outgoing connection its local port. A port the OS handed out for `:0` is one of
/// those, and a test that opens many connections meanwhile (a load, a pool) can take it as a
/// connection's local port before the server binds it, which then fails as "address in use".
const RANGE: std::ops::Range<u16> = 20_000..32_000;

/// A port on 127.0.0.1 that nothing holds now, outside the ephemeral range, picked at random so
/// that tests running at once rarely try the same one. It is free when answered; a test that
/// cannot bind it (another took it in between) should try another.
pub fn free_port() -> std::io::Result<u16> {
    use std::hash::{BuildHasher, Hasher};
    let span = u64::from(RANGE.end - RANGE.start);
    for _ in 0..200 {
        // Each `RandomState` is keyed afresh: a random number without a crate for it.
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let port = RANGE.start + u16::try_from(random % span).unwrap_or(0);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    // Everything tried was taken: let the OS pick, from the ephemeral range.
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_free_port_is_outside_the_ephemeral_range_and_can_be_bound() {
        let port = super::free_port().unwrap_or_default();
        assert!(super::RANGE.contains(&port), "{port}");
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    }
}
