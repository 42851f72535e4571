//! The codec against hand-made client frames over an in-memory socket.

use super::*;
use crate::doors::websocket::deflate::Deflate;
use tokio::io::{duplex, DuplexStream};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// A raw deflate stream of `data`, sync-flushed, tail removed.
fn compressed(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn conn(deflate: Option<Deflate>, max: usize) -> (Conn<DuplexStream>, DuplexStream) {
    let (server, client) = duplex(1 << 20);
    (Conn::new(server, max, max, deflate), client)
}

async fn read_after(
    bytes: &[u8],
    deflate: Option<Deflate>,
    max: usize,
) -> Vec<Result<Message, ReadError>> {
    let (mut conn, mut client) = conn(deflate, max);
    client.write_all(bytes).await.unwrap();
    drop(client);
    let mut out = Vec::new();
    loop {
        let read = conn.read().await;
        let end = read.is_err();
        out.push(read);
        if end {
            return out;
        }
    }
}

fn text(s: &str) -> Result<Message, ReadError> {
    Ok(Message::Text(Text(Bytes::copy_from_slice(s.as_bytes()))))
}

#[tokio::test]
async fn whole_and_fragmented_messages_are_unmasked_and_joined() {
    let mut wire = frame(0x81, b"hello, world");
    wire.extend(frame(0x02, b"\x00\x01"));
    wire.extend(frame(0x89, b"ping!")); // a control frame between fragments
    wire.extend(frame(0x80, b"\x02"));
    wire.extend(frame(0x82, &[7u8; 70_000]));
    let got = read_after(&wire, None, 1 << 20).await;
    assert_eq!(got[0], text("hello, world"));
    assert_eq!(got[1], Ok(Message::Ping(Bytes::from_static(b"ping!"))));
    assert_eq!(
        got[2],
        Ok(Message::Binary(Bytes::from_static(b"\x00\x01\x02")))
    );
    assert_eq!(got[3], Ok(Message::Binary(Bytes::from(vec![7u8; 70_000]))));
    assert_eq!(got[4], Err(ReadError::Gone));
}

#[tokio::test]
async fn invalid_utf8_fails_at_the_first_bad_fragment() {
    // "é" split across fragments is fine; a lone continuation byte is not,
    // and fails before the message's last fragment arrives.
    let mut wire = frame(0x01, b"caf\xc3");
    wire.extend(frame(0x80, b"\xa9"));
    wire.extend(frame(0x01, b"ok"));
    wire.extend(frame(0x00, b"\xa9"));
    let got = read_after(&wire, None, 1 << 20).await;
    assert_eq!(got[0], text("café"));
    assert_eq!(got[1], Err(ReadError::InvalidData));
    let cut = read_after(&frame(0x81, b"caf\xc3"), None, 1 << 20).await;
    assert_eq!(cut[0], Err(ReadError::InvalidData));
}

#[tokio::test]
async fn protocol_violations_are_1002() {
    let cases: Vec<Vec<u8>> = vec![
        frame(0xC1, b"x"),                               // RSV1 without the extension
        frame(0xA1, b"x"),                               // RSV2
        frame(0x83, b"x"),                               // reserved opcode
        frame(0x80, b"x"),                               // nothing to continue
        frame(0x09, b"x"),                               // fragmented ping
        frame(0x89, &[0u8; 126]),                        // control frame too long
        frame(0x88, b"\x03"),                            // one-byte close
        [frame(0x01, b"a"), frame(0x81, b"b")].concat(), // new message mid-message
        vec![0x81, 0x01, b'x'],                          // unmasked
    ];
    for wire in cases {
        let got = read_after(&wire, None, 1 << 20).await;
        assert!(
            matches!(got[0], Err(ReadError::Protocol(_))),
            "{wire:x?}: {got:?}"
        );
        assert_eq!(got[0].as_ref().unwrap_err().close_code(), Some(1002));
    }
}

#[tokio::test]
async fn rsv1_on_control_or_continuation_frames_is_1002_even_with_deflate() {
    let on = Some(Deflate::default());
    let ping = read_after(&frame(0xC9, b""), on, 1 << 20).await;
    assert!(matches!(ping[0], Err(ReadError::Protocol(_))));
    let wire = [frame(0x41, &compressed(b"ab")), frame(0xC0, b"")].concat();
    let cont = read_after(&wire, on, 1 << 20).await;
    assert!(matches!(cont[0], Err(ReadError::Protocol(_))));
}

#[tokio::test]
async fn close_frames_report_their_code_and_bad_codes_become_1002() {
    let got = read_after(&frame(0x88, b"\x03\xe8bye"), None, 1 << 20).await;
    assert_eq!(got[0], Ok(Message::Close(Some((1000, "bye".to_owned())))));
    let got = read_after(&frame(0x88, b""), None, 1 << 20).await;
    assert_eq!(got[0], Ok(Message::Close(None)));
    for bad in [999u16, 1004, 1005, 1006, 1014, 1015, 2000, 5000] {
        let got = read_after(&frame(0x88, &bad.to_be_bytes()), None, 1 << 20).await;
        assert_eq!(
            got[0],
            Ok(Message::Close(Some((
                1002,
                "Protocol violation".to_owned()
            )))),
            "{bad}"
        );
    }
    let got = read_after(&frame(0x88, b"\x03\xe8\xff"), None, 1 << 20).await;
    assert_eq!(got[0], Err(ReadError::InvalidData));
}

#[tokio::test]
async fn limits_apply_to_frames_and_messages() {
    let got = read_after(&frame(0x82, &[0u8; 101]), None, 100).await;
    assert_eq!(got[0], Err(ReadError::TooBig));
    let wire = [frame(0x02, &[0u8; 60]), frame(0x80, &[0u8; 60])].concat();
    let got = read_after(&wire, None, 100).await;
    assert_eq!(got[0], Err(ReadError::TooBig));
    assert_eq!(ReadError::TooBig.close_code(), Some(1009));
}

#[tokio::test]
async fn compressed_messages_are_inflated_whole_or_fragmented() {
    let on = Some(Deflate::default());
    let body = "compress me ".repeat(50);
    let squeezed = compressed(body.as_bytes());
    let (a, b) = squeezed.split_at(squeezed.len() / 2);
    let mut wire = frame(0xC1, &squeezed);
    wire.extend(frame(0x41, a));
    wire.extend(frame(0x80, b));
    wire.extend(frame(0x81, b"plain too"));
    let got = read_after(&wire, on, 1 << 20).await;
    assert_eq!(got[0], text(&body));
    assert_eq!(got[1], text(&body));
    assert_eq!(got[2], text("plain too"));
}

#[tokio::test]
async fn a_deflate_bomb_is_too_big_on_its_decompressed_size() {
    let bomb = compressed(&vec![0u8; 4 << 20]);
    assert!(bomb.len() < 10_000);
    let got = read_after(&frame(0xC2, &bomb), Some(Deflate::default()), 1 << 20).await;
    assert_eq!(got[0], Err(ReadError::TooBig));
}

#[tokio::test]
async fn invalid_utf8_inside_a_compressed_message_is_1007() {
    let bad = compressed(&[b'a', 0xff, b'b'].repeat(40));
    let got = read_after(&frame(0xC1, &bad), Some(Deflate::default()), 1 << 20).await;
    assert_eq!(got[0], Err(ReadError::InvalidData));
}

async fn written(conn: &mut Conn<DuplexStream>, client: &mut DuplexStream) -> Vec<u8> {
    conn.flush().await.unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let n = client.read(&mut buf).await.unwrap();
    buf.truncate(n);
    buf
}

#[tokio::test]
async fn writes_are_unmasked_final_frames() {
    let (mut conn, mut client) = conn(None, 1 << 20);
    conn.queue_message(true, b"hi");
    conn.queue_pong(b"p");
    conn.queue_close(Some((1000, "done")));
    let wire = written(&mut conn, &mut client).await;
    assert_eq!(
        wire,
        [&b"\x81\x02hi"[..], b"\x8a\x01p", b"\x88\x06\x03\xe8done"].concat()
    );
    conn.queue_message(false, &[1u8; 300]);
    let wire = written(&mut conn, &mut client).await;
    assert_eq!(&wire[..4], b"\x82\x7e\x01\x2c");
    assert_eq!(wire.len(), 304);
}

#[tokio::test]
async fn compressed_writes_set_rsv1_and_inflate_back() {
    let (mut conn, mut client) = conn(Some(Deflate::default()), 1 << 20);
    let body = "the same words again and again ".repeat(40);
    conn.queue_message(true, body.as_bytes());
    conn.queue_message(true, b"tiny");
    let wire = written(&mut conn, &mut client).await;
    assert_eq!(wire[0], 0xC1);
    let len = usize::from(wire[1]);
    assert!(len < 126 && len < body.len() / 4);
    let mut d = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut input = wire[2..2 + len].to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    d.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
        .unwrap();
    assert_eq!(out, body.as_bytes());
    assert_eq!(&wire[2 + len..], b"\x81\x04tiny");
}

#[test]
fn unmasking_handles_every_length_and_phase() {
    for len in 0..40u8 {
        let data: Vec<u8> = (0..len).collect();
        let mut masked: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[i % 4])
            .collect();
        unmask(&mut masked, MASK);
        assert_eq!(masked, data);
    }
}
