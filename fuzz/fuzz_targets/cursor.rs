//! Cursor decoding: a valid cursor with bits flipped, bytes cut or appended, presented by
//! its own or another organization, or any string at all. Only the exact cursor, from the
//! organization it was issued to, is accepted; everything else is a `cursor` error.
#![no_main]

use apikeys::page::{ListRequest, RawListParams};
use apikeys_fuzz::world;
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Token {
    /// Any string.
    Raw(String),
    /// One of the issued cursors, changed.
    Mutated {
        which: u8,
        /// (byte index, XOR mask) pairs applied to the decoded bytes.
        flips: Vec<(u16, u8)>,
        truncate: Option<u16>,
        append: Vec<u8>,
        /// Re-encode with padding or the standard alphabet instead.
        encoding: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    token: Token,
    /// Present it as the other organization.
    foreign: bool,
    order: Option<bool>,
}

fuzz_target!(|input: Input| {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let w = world();
    let (token, issued) = match &input.token {
        Token::Raw(s) => (s.clone(), None),
        Token::Mutated {
            which,
            flips,
            truncate,
            append,
            encoding,
        } => {
            let original = &w.demo_cursors[*which as usize % w.demo_cursors.len()];
            let mut bytes = URL_SAFE_NO_PAD
                .decode(original)
                .expect("issued cursors decode");
            for (i, mask) in flips {
                let n = bytes.len();
                bytes[*i as usize % n] ^= mask;
            }
            if let Some(n) = truncate {
                bytes.truncate(*n as usize);
            }
            bytes.extend_from_slice(append);
            let token = match encoding % 3 {
                0 => URL_SAFE_NO_PAD.encode(&bytes),
                1 => URL_SAFE.encode(&bytes),
                _ => STANDARD.encode(&bytes),
            };
            (token, Some(original.clone()))
        }
    };
    let org = if input.foreign { &w.other } else { &w.demo };
    let order = input.order.map(|asc| if asc { "asc" } else { "desc" });
    let raw = RawListParams {
        order,
        cursor: Some(&token),
        ..Default::default()
    };
    match ListRequest::parse(raw, org, &w.app.cursors) {
        Ok(_) => {
            // Only an unchanged cursor, from its own organization, opens.
            let own = if input.foreign {
                &w.other_cursors
            } else {
                &w.demo_cursors
            };
            assert!(
                own.contains(&token),
                "a forged or altered cursor was accepted: {token:?}"
            );
            if let Some(original) = issued {
                assert_eq!(token, original, "an altered cursor was accepted");
            }
        }
        Err(e) => assert_eq!(e.param, "cursor", "{e}"),
    }
});
