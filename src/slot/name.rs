//! Mailslot and directory names: what is allowed, and the case-insensitive key
//! under which a name is stored (Windows matches mailslot names ignoring ASCII case).

use super::SlotError;

/// Longest name component, as on every Linux file system.
pub const MAX_NAME_LEN: usize = 255;

/// A validated name component: the creator's spelling plus its lookup key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    spelling: String,
    key: String,
}

impl Name {
    /// Checks one path component. Backslash is refused because it is the
    /// Windows path separator: `\\.\mailslot\a\b` must mean `a/b`, never a
    /// file called `a\b`. Non-UTF-8 names are refused so that the name can
    /// travel to Windows peers unchanged.
    pub fn parse(raw: &[u8]) -> Result<Name, SlotError> {
        if raw.len() > MAX_NAME_LEN {
            return Err(SlotError::NameTooLong);
        }
        let spelling = std::str::from_utf8(raw).map_err(|_| SlotError::InvalidName)?;
        if spelling.is_empty()
            || spelling == "."
            || spelling == ".."
            || spelling.contains(['/', '\\', '\0'])
        {
            return Err(SlotError::InvalidName);
        }
        Ok(Name {
            key: key_of(spelling),
            spelling: spelling.to_owned(),
        })
    }

    /// The spelling the creator used, shown by `ls`.
    pub fn spelling(&self) -> &str {
        &self.spelling
    }

    /// The case-folded key two spellings of one name share.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// ASCII case folding only, as Windows does for mailslot names.
pub fn key_of(spelling: &str) -> String {
    spelling.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_ascii_case_only() {
        let a = Name::parse(b"Chat").unwrap();
        let b = Name::parse(b"cHAT").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.spelling(), "Chat");
        assert_ne!(Name::parse("É".as_bytes()).unwrap().key(), "é");
    }

    #[test]
    fn refuses_names_that_cannot_be_mailslot_names() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\\b", b"a\0b", b"\xff"] {
            assert_eq!(Name::parse(bad), Err(SlotError::InvalidName), "{bad:?}");
        }
        assert_eq!(
            Name::parse(&[b'x'; MAX_NAME_LEN + 1]),
            Err(SlotError::NameTooLong)
        );
        assert!(Name::parse(&[b'x'; MAX_NAME_LEN]).is_ok());
    }
}
