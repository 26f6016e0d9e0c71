//! NetBIOS names as they travel in datagrams (RFC 1001 §14.1, RFC 1002 §4.1).
//!
//! A name is 15 name bytes plus a suffix ("type") byte. On the wire the 16
//! bytes are "first-level encoded": each nibble `n` becomes the character
//! `'A' + n`, giving one 32-character label, then the NetBIOS scope as
//! DNS-style labels, then a zero byte:
//!
//! ```text
//! 0x20 | 32 half-ASCII characters | [len | scope label]... | 0x00
//! ```

use std::fmt;

use super::{DecodeError, EncodeError, u8_at};

/// Name bytes before the suffix byte; shorter names are padded.
pub const NAME_LEN: usize = 15;

/// The only valid first label length: 16 bytes, two characters each.
const ENCODED_LABEL_LEN: u8 = 32;
/// Bytes of an encoded name without scope: length byte, label, final zero.
const UNSCOPED_ENCODED_LEN: usize = 1 + ENCODED_LABEL_LEN as usize + 1;
/// Scope labels follow DNS rules (RFC 1001 §14.1 reuses RFC 883 labels).
const MAX_LABEL_LEN: usize = 63;
/// DNS limit on a whole encoded name, scope included.
const MAX_ENCODED_LEN: usize = 255;
/// Longest dotted scope that still fits in [`MAX_ENCODED_LEN`].
const MAX_SCOPE_LEN: usize = MAX_ENCODED_LEN - UNSCOPED_ENCODED_LEN - 1;
/// Length bytes with both top bits set are DNS compression pointers, which
/// RFC 1002 allows in name-service packets only, never in datagrams.
const POINTER_TAG: u8 = 0xC0;

/// A NetBIOS name: 15 raw name bytes (padding included) and a suffix byte.
///
/// Equality is byte-exact, as on the wire; use
/// [`eq_ignore_ascii_case`](Self::eq_ignore_ascii_case) to decide whether a
/// datagram is addressed to one of our names.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetbiosName {
    bytes: [u8; NAME_LEN],
    suffix: u8,
}

impl NetbiosName {
    /// `\x01\x02__MSBROWSE__\x02<01>`, the group of all master browsers
    /// (target of DomainAnnouncement); its raw bytes are not a text name.
    pub const MSBROWSE: Self = Self::from_raw(*b"\x01\x02__MSBROWSE__\x02", 0x01);

    /// Builds the name a peer expects: upper-cased (Windows does not accept
    /// lower case reliably), padded with spaces, or with NULs for the
    /// wildcard `*` as RFC 1001 §14.1 requires.
    ///
    /// Accepts 1 to 15 printable ASCII characters: other bytes would be
    /// interpreted in the peer's OEM code page.
    pub fn new(name: &str, suffix: u8) -> Result<Self, EncodeError> {
        const WHAT: &str = "NetBIOS name";
        let raw = name.as_bytes();
        if raw.len() > NAME_LEN {
            return Err(EncodeError::TooLong {
                field: WHAT,
                len: raw.len(),
                max: NAME_LEN,
            });
        }
        if let Some(&byte) = raw.iter().find(|byte| !is_printable(**byte)) {
            return Err(EncodeError::BadCharacter { field: WHAT, byte });
        }
        // Trailing spaces are indistinguishable from padding.
        if name.trim_end_matches(' ').is_empty() {
            return Err(EncodeError::Empty(WHAT));
        }
        let pad = if raw == b"*" { 0 } else { b' ' };
        let mut bytes = [pad; NAME_LEN];
        for (slot, byte) in bytes.iter_mut().zip(raw) {
            *slot = byte.to_ascii_uppercase();
        }
        Ok(Self { bytes, suffix })
    }

    /// Takes the 15 name bytes exactly as they go on the wire, for special
    /// names such as [`MSBROWSE`](Self::MSBROWSE); no case or padding rules.
    pub const fn from_raw(bytes: [u8; NAME_LEN], suffix: u8) -> Self {
        Self { bytes, suffix }
    }

    /// The 15 name bytes as sent, padding included.
    pub fn raw(&self) -> &[u8; NAME_LEN] {
        &self.bytes
    }

    /// The 16th byte, which says which service the name stands for
    /// (`0x00` workstation/domain member, `0x1C` domain controllers, ...).
    pub fn suffix(&self) -> u8 {
        self.suffix
    }

    /// The name bytes without their trailing space or NUL padding.
    pub fn trimmed(&self) -> &[u8] {
        let len = self
            .bytes
            .iter()
            .rposition(|&byte| byte != b' ' && byte != 0)
            .map_or(0, |last| last + 1);
        self.bytes.get(..len).unwrap_or_default()
    }

    /// Whether both name the same thing: NetBIOS names are case-insensitive,
    /// and Samba has been seen to accept lower-case encodings.
    pub fn eq_ignore_ascii_case(&self, other: &Self) -> bool {
        self.suffix == other.suffix && self.bytes.eq_ignore_ascii_case(&other.bytes)
    }

    /// Appends the encoded name followed by `scope` and the final zero byte.
    pub(crate) fn encode(&self, scope: &Scope, out: &mut Vec<u8>) {
        out.push(ENCODED_LABEL_LEN);
        for byte in self.bytes.iter().chain([&self.suffix]) {
            out.extend_from_slice(&[b'A' + (byte >> 4), b'A' + (byte & 0x0F)]);
        }
        if !scope.is_empty() {
            for label in scope.as_str().split('.') {
                // Scope::new caps labels at 63 bytes, so the length fits.
                out.push(label.len() as u8);
                out.extend_from_slice(label.as_bytes());
            }
        }
        out.push(0);
    }

    /// Reads one encoded name from the start of `input`; returns the name,
    /// its scope and the bytes after it.
    pub(crate) fn decode(input: &[u8]) -> Result<(Self, Scope, &[u8]), DecodeError> {
        let first_len = read_label_len(input, 0)?;
        if first_len != ENCODED_LABEL_LEN {
            return Err(DecodeError::BadField {
                field: "NetBIOS name length",
                value: first_len.into(),
            });
        }
        let label_end = 1 + usize::from(first_len);
        let encoded = input.get(1..label_end).ok_or(DecodeError::Truncated {
            need: label_end,
            have: input.len(),
        })?;
        let (pairs, _) = encoded.as_chunks::<2>();
        let mut raw = [0u8; NAME_LEN + 1];
        for (byte, &[high, low]) in raw.iter_mut().zip(pairs) {
            *byte = (half_ascii_nibble(high)? << 4) | half_ascii_nibble(low)?;
        }
        let [bytes @ .., suffix] = raw;
        let (scope, rest) = decode_scope(input, label_end)?;
        Ok((Self { bytes, suffix }, scope, rest))
    }

    /// Reads one name at `at` in a name-service packet, where RFC 1002
    /// §4.1 allows a compression pointer: two bytes `0b11` + a 14-bit offset
    /// of the same name earlier in the packet (Samba and Windows point a
    /// resource record's name at the question's, `C0 0C`). Only whole-name
    /// pointers occur in NetBIOS; one inside a scope is refused. Returns the
    /// name, its scope and the offset after it.
    pub(crate) fn decode_in_packet(
        packet: &[u8],
        at: usize,
    ) -> Result<(Self, Scope, usize), DecodeError> {
        let first = u8_at(packet, at)?;
        if first & POINTER_TAG != POINTER_TAG {
            let input = packet.get(at..).unwrap_or_default();
            let (name, scope, rest) = Self::decode(input)?;
            return Ok((name, scope, packet.len() - rest.len()));
        }
        let low = u8_at(packet, at + 1)?;
        let target = usize::from(u16::from_be_bytes([first & !POINTER_TAG, low]));
        // Pointing only backwards means no loops: each hop moves earlier,
        // and the name there may not be another pointer.
        if target >= at {
            return Err(DecodeError::BadField {
                field: "NetBIOS name pointer (must point back)",
                value: u32::try_from(target).unwrap_or(u32::MAX),
            });
        }
        let (name, scope, _) = Self::decode(packet.get(target..).unwrap_or_default())?;
        Ok((name, scope, at + 2))
    }
}

/// Shows the name as Wireshark does: `MSLPDC<1c>`, other bytes as `\xNN`.
impl fmt::Display for NetbiosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &byte in self.trimmed() {
            if is_printable(byte) && byte != b'\\' {
                write!(f, "{}", char::from(byte))?;
            } else {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        write!(f, "<{:02x}>", self.suffix)
    }
}

impl fmt::Debug for NetbiosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetbiosName({self})")
    }
}

/// A NetBIOS scope in dotted form (`corp.example`); empty is the default
/// scope, the only one in common use. Peers only hear peers in the same
/// scope, so a node has exactly one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope(String);

impl Scope {
    /// Checks the DNS-style label rules so that the scope can always be
    /// encoded: labels of 1 to 63 printable ASCII characters other than
    /// `.`, at most 255 bytes for the whole encoded name.
    pub fn new(dotted: &str) -> Result<Self, EncodeError> {
        const WHAT: &str = "NetBIOS scope";
        if dotted.len() > MAX_SCOPE_LEN {
            return Err(EncodeError::TooLong {
                field: WHAT,
                len: dotted.len(),
                max: MAX_SCOPE_LEN,
            });
        }
        if dotted.is_empty() {
            return Ok(Self::default());
        }
        for label in dotted.split('.') {
            if label.is_empty() {
                return Err(EncodeError::Empty("NetBIOS scope label"));
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(EncodeError::TooLong {
                    field: "NetBIOS scope label",
                    len: label.len(),
                    max: MAX_LABEL_LEN,
                });
            }
            if let Some(&byte) = label.as_bytes().iter().find(|b| !is_scope_byte(**b)) {
                return Err(EncodeError::BadCharacter { field: WHAT, byte });
            }
        }
        Ok(Self(dotted.to_owned()))
    }

    /// The dotted form, empty for the default scope.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the default (empty) scope.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Scopes are DNS names, so case does not matter.
    pub fn eq_ignore_ascii_case(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }

    /// Bytes of a name encoded in this scope.
    pub(crate) fn encoded_name_len(&self) -> usize {
        // Dotted "a.bc" becomes "1 a 2 bc": one length byte per dot, plus one.
        let labels_len = if self.is_empty() { 0 } else { self.0.len() + 1 };
        UNSCOPED_ENCODED_LEN + labels_len
    }
}

/// Reads the scope labels that start at `at` in `input`, up to and including
/// the terminating zero; returns the scope and the bytes after it.
fn decode_scope(input: &[u8], mut at: usize) -> Result<(Scope, &[u8]), DecodeError> {
    let mut dotted = String::new();
    loop {
        let len = usize::from(read_label_len(input, at)?);
        let label_start = at + 1;
        at = label_start + len;
        if len == 0 {
            break;
        }
        // The terminating zero byte still has to follow this label.
        if at >= MAX_ENCODED_LEN {
            return Err(DecodeError::BadField {
                field: "NetBIOS name length with scope",
                value: u32::try_from(at + 1).unwrap_or(u32::MAX),
            });
        }
        let label = input.get(label_start..at).ok_or(DecodeError::Truncated {
            need: at,
            have: input.len(),
        })?;
        if let Some(&byte) = label.iter().find(|b| !is_scope_byte(**b)) {
            return Err(DecodeError::BadField {
                field: "NetBIOS scope character",
                value: byte.into(),
            });
        }
        if !dotted.is_empty() {
            dotted.push('.');
        }
        // Every byte passed is_scope_byte, so each is a one-byte char.
        dotted.extend(label.iter().map(|&byte| char::from(byte)));
    }
    let rest = input.get(at..).ok_or(DecodeError::Truncated {
        need: at,
        have: input.len(),
    })?;
    Ok((Scope(dotted), rest))
}

/// Reads a label length byte, refusing compression pointers and the
/// reserved label types.
fn read_label_len(input: &[u8], at: usize) -> Result<u8, DecodeError> {
    let len = *input.get(at).ok_or(DecodeError::Truncated {
        need: at + 1,
        have: input.len(),
    })?;
    if len & POINTER_TAG == POINTER_TAG {
        return Err(DecodeError::BadField {
            field: "NetBIOS name label (compression pointers are not allowed in datagrams)",
            value: len.into(),
        });
    }
    if usize::from(len) > MAX_LABEL_LEN {
        return Err(DecodeError::BadField {
            field: "NetBIOS name label length",
            value: len.into(),
        });
    }
    Ok(len)
}

fn half_ascii_nibble(character: u8) -> Result<u8, DecodeError> {
    match character {
        b'A'..=b'P' => Ok(character - b'A'),
        _ => Err(DecodeError::BadField {
            field: "NetBIOS name half-ASCII character",
            value: character.into(),
        }),
    }
}

fn is_printable(byte: u8) -> bool {
    (b' '..=b'~').contains(&byte)
}

fn is_scope_byte(byte: u8) -> bool {
    byte.is_ascii_graphic() && byte != b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(name: &NetbiosName, scope: &Scope) -> Vec<u8> {
        let mut out = Vec::new();
        name.encode(scope, &mut out);
        out
    }

    fn unscoped(label: &str) -> Vec<u8> {
        let mut out = vec![0x20];
        out.extend_from_slice(label.as_bytes());
        out.push(0);
        out
    }

    fn decode_all(input: &[u8]) -> Result<(NetbiosName, Scope), DecodeError> {
        let (name, scope, rest) = NetbiosName::decode(input)?;
        assert!(rest.is_empty(), "left over: {rest:?}");
        Ok((name, scope))
    }

    #[test]
    fn worked_example_msldom_1c() {
        // wire-format.md §2.
        let name = NetbiosName::new("MSLDOM", 0x1C).unwrap();
        assert_eq!(
            encode(&name, &Scope::default()),
            unscoped("ENFDEMEEEPENCACACACACACACACACABM")
        );
        assert_eq!(name.raw(), b"MSLDOM         ");
        assert_eq!(name.to_string(), "MSLDOM<1c>");
    }

    #[test]
    fn names_are_upper_cased_and_space_padded() {
        let name = NetbiosName::new("clientb", 0).unwrap();
        assert_eq!(name.raw(), b"CLIENTB        ");
        assert_eq!(
            encode(&name, &Scope::default()),
            unscoped("EDEMEJEFEOFEECCACACACACACACACAAA")
        );
    }

    #[test]
    fn wildcard_is_nul_padded() {
        let name = NetbiosName::new("*", 0).unwrap();
        assert_eq!(
            encode(&name, &Scope::default()),
            unscoped("CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        );
        assert_eq!(name.to_string(), "*<00>");
    }

    #[test]
    fn msbrowse_round_trips_and_displays_escaped() {
        let encoded = encode(&NetbiosName::MSBROWSE, &Scope::default());
        assert_eq!(encoded, unscoped("ABACFPFPENFDECFCEPFHFDEFFPFPACAB"));
        let (name, _) = decode_all(&encoded).unwrap();
        assert_eq!(name, NetbiosName::MSBROWSE);
        assert_eq!(name.to_string(), "\\x01\\x02__MSBROWSE__\\x02<01>");
    }

    #[test]
    fn new_rejects_bad_names() {
        assert_eq!(
            NetbiosName::new("ABCDEFGHIJKLMNOP", 0),
            Err(EncodeError::TooLong {
                field: "NetBIOS name",
                len: 16,
                max: 15
            })
        );
        assert!(NetbiosName::new("ABCDEFGHIJKLMNO", 0).is_ok());
        assert_eq!(
            NetbiosName::new("", 0),
            Err(EncodeError::Empty("NetBIOS name"))
        );
        assert_eq!(
            NetbiosName::new("   ", 0),
            Err(EncodeError::Empty("NetBIOS name"))
        );
        assert!(matches!(
            NetbiosName::new("A\u{0}B", 0),
            Err(EncodeError::BadCharacter { byte: 0, .. })
        ));
        assert!(matches!(
            NetbiosName::new("DÉJÀ", 0),
            Err(EncodeError::BadCharacter { byte: 0xC3, .. })
        ));
    }

    #[test]
    fn case_insensitive_comparison_keeps_the_suffix() {
        let upper = NetbiosName::new("MSLDOM", 0).unwrap();
        let lower = NetbiosName::from_raw(*b"msldom         ", 0);
        assert_ne!(upper, lower);
        assert!(upper.eq_ignore_ascii_case(&lower));
        assert!(!upper.eq_ignore_ascii_case(&NetbiosName::new("MSLDOM", 0x1C).unwrap()));
    }

    #[test]
    fn decode_keeps_case_and_returns_the_rest() {
        // Lower-case name bytes "msldom" encode fine: case is the sender's.
        let mut input = encode(
            &NetbiosName::from_raw(*b"msldom         ", 0x1D),
            &Scope::default(),
        );
        input.extend_from_slice(b"rest");
        let (name, scope, rest) = NetbiosName::decode(&input).unwrap();
        assert_eq!(name.raw(), b"msldom         ");
        assert_eq!(name.suffix(), 0x1D);
        assert!(scope.is_empty());
        assert_eq!(rest, b"rest");
    }

    #[test]
    fn scope_labels_encode_and_decode() {
        // wire-format.md §2: `20 <32> 04 'corp' 07 'example' 00`.
        let scope = Scope::new("corp.example").unwrap();
        let name = NetbiosName::new("CLIENTB", 0).unwrap();
        let encoded = encode(&name, &scope);
        assert_eq!(encoded.len(), scope.encoded_name_len());
        assert_eq!(&encoded[33..], b"\x04corp\x07example\x00");
        assert_eq!(decode_all(&encoded).unwrap(), (name, scope));
    }

    #[test]
    fn scope_rules() {
        assert!(Scope::new("").unwrap().is_empty());
        assert_eq!(
            Scope::new("a..b"),
            Err(EncodeError::Empty("NetBIOS scope label"))
        );
        assert_eq!(
            Scope::new("."),
            Err(EncodeError::Empty("NetBIOS scope label"))
        );
        assert!(matches!(
            Scope::new(&"x".repeat(64)),
            Err(EncodeError::TooLong { max: 63, .. })
        ));
        assert!(matches!(
            Scope::new("a b"),
            Err(EncodeError::BadCharacter { byte: b' ', .. })
        ));
        // The longest scope still fits the 255-byte name limit, one more does not.
        let longest = [
            "x".repeat(63),
            "y".repeat(63),
            "z".repeat(63),
            "w".repeat(28),
        ]
        .join(".");
        assert_eq!(longest.len(), MAX_SCOPE_LEN);
        let scope = Scope::new(&longest).unwrap();
        assert_eq!(scope.encoded_name_len(), MAX_ENCODED_LEN);
        let encoded = encode(&NetbiosName::MSBROWSE, &scope);
        assert_eq!(encoded.len(), MAX_ENCODED_LEN);
        assert_eq!(decode_all(&encoded).unwrap().1, scope);
        assert!(matches!(
            Scope::new(&format!("{longest}w")),
            Err(EncodeError::TooLong { .. })
        ));
    }

    #[test]
    fn decode_rejects_bad_label_lengths() {
        for len in [0x00, 0x1F, 0x21, 0x3F] {
            let mut input = unscoped("ENFDEMEEEPENCACACACACACACACACABM");
            input[0] = len;
            assert_eq!(
                decode_all(&input),
                Err(DecodeError::BadField {
                    field: "NetBIOS name length",
                    value: len.into()
                })
            );
        }
        for len in [0x40, 0xBF] {
            let mut input = unscoped("ENFDEMEEEPENCACACACACACACACACABM");
            input[0] = len;
            assert!(matches!(
                decode_all(&input),
                Err(DecodeError::BadField {
                    field: "NetBIOS name label length",
                    ..
                })
            ));
        }
    }

    #[test]
    fn decode_rejects_compression_pointers() {
        let pointer = [0xC0, 0x0C];
        assert!(matches!(
            decode_all(&pointer),
            Err(DecodeError::BadField { value: 0xC0, .. })
        ));
        // ... also where a scope label would start.
        let mut input = unscoped("ENFDEMEEEPENCACACACACACACACACABM");
        input.pop();
        input.extend_from_slice(&pointer);
        assert!(matches!(
            decode_all(&input),
            Err(DecodeError::BadField { value: 0xC0, .. })
        ));
    }

    #[test]
    fn decode_rejects_bad_half_ascii() {
        for bad in [b'Q', b'a', b'@', b' ', 0] {
            let mut input = unscoped("ENFDEMEEEPENCACACACACACACACACABM");
            input[7] = bad;
            assert_eq!(
                decode_all(&input),
                Err(DecodeError::BadField {
                    field: "NetBIOS name half-ASCII character",
                    value: bad.into()
                })
            );
        }
    }

    #[test]
    fn decode_rejects_bad_scope_characters() {
        let mut input = unscoped("ENFDEMEEEPENCACACACACACACACACABM");
        input.pop();
        input.extend_from_slice(b"\x03a.b\x00");
        assert!(matches!(
            decode_all(&input),
            Err(DecodeError::BadField {
                field: "NetBIOS scope character",
                value: 0x2E
            })
        ));
    }

    #[test]
    fn every_truncation_is_reported() {
        let scope = Scope::new("corp.example").unwrap();
        let encoded = encode(&NetbiosName::new("MSLDOM", 0).unwrap(), &scope);
        for len in 0..encoded.len() {
            assert!(
                matches!(
                    NetbiosName::decode(&encoded[..len]),
                    Err(DecodeError::Truncated { have, .. }) if have == len
                ),
                "prefix of {len} bytes"
            );
        }
    }
}
