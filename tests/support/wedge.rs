//! [`WedgeProxy`]: a middlebox that wedges. It forwards a connection both ways, reading the
//! client's protocol messages as they pass; from the message a [`Trigger`] picks on, it reads
//! and silently drops everything the client sends (the kernel still acknowledges every byte,
//! so keepalives see nothing wrong), while the server side stays open and answers whatever
//! reached it. Plaintext only (`sslmode=disable`): the trigger reads the messages.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Which client message wedges the connection.
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    /// The `n`-th message (from 1) of a connection whose bytes contain the text.
    Text(&'static str, usize),
    /// The `n`-th CopyData message (from 1) of a connection.
    CopyData(usize),
}

/// A forwarding proxy that wedges each connection at its trigger. Upstream connections stay
/// open until it is dropped, as a wedged middlebox keeps them.
pub struct WedgeProxy {
    port: u16,
    wedged: Arc<AtomicUsize>,
    upstream: Arc<Mutex<Vec<TcpStream>>>,
}

impl WedgeProxy {
    /// Starts forwarding 127.0.0.1:[`WedgeProxy::port`] to 127.0.0.1:`target`.
    pub fn start(target: u16, trigger: Trigger) -> WedgeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let wedged = Arc::new(AtomicUsize::new(0));
        let upstream = Arc::new(Mutex::new(Vec::new()));
        let (w, up) = (wedged.clone(), upstream.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    return;
                };
                up.lock().unwrap().push(server.try_clone().unwrap());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let (mut from, mut to) = (s2, c2);
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Both);
                });
                let w = w.clone();
                std::thread::spawn(move || forward(client, server, trigger, &w));
            }
        });
        WedgeProxy {
            port,
            wedged,
            upstream,
        }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many connections it has wedged so far.
    pub fn wedged(&self) -> usize {
        self.wedged.load(Ordering::SeqCst)
    }
}

impl Drop for WedgeProxy {
    fn drop(&mut self) {
        for s in self.upstream.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Client to server, message by message, until the trigger; then reads and drops.
fn forward(mut from: TcpStream, mut to: TcpStream, trigger: Trigger, wedged: &AtomicUsize) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut startup, mut is_wedged) = (true, false);
    let (mut texts, mut copies) = (0usize, 0usize);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if is_wedged {
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(len) = message_len(&pending, startup) {
            let message: Vec<u8> = pending.drain(..len).collect();
            if startup {
                // SSLRequest and GSSENCRequest come before the startup message itself.
                let code = u32::from_be_bytes([message[4], message[5], message[6], message[7]]);
                startup = code == 80877103 || code == 80877104;
            }
            let hit = match trigger {
                Trigger::Text(text, nth) => {
                    let found = message.windows(text.len()).any(|w| w == text.as_bytes());
                    texts += usize::from(found);
                    found && texts == nth
                }
                Trigger::CopyData(nth) => {
                    copies += usize::from(!startup && message[0] == b'd');
                    message[0] == b'd' && copies == nth
                }
            };
            if hit {
                is_wedged = true;
                wedged.fetch_add(1, Ordering::SeqCst);
                pending.clear();
                break;
            }
            if to.write_all(&message).is_err() {
                return;
            }
        }
    }
}

/// The length of the first whole message in `pending`, if it holds one: untyped (length
/// first) until the startup message has passed, typed (a byte, then the length) after.
fn message_len(pending: &[u8], startup: bool) -> Option<usize> {
    let at = usize::from(!startup);
    let len = pending.get(at..at + 4)?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize + at;
    (pending.len() >= len).then_some(len)
}
