//! The captured datagrams of `golden-datagrams.txt` (a verbatim copy of
//! `docs/golden-datagrams.txt`), shared by the wire test files through
//! `#[path]` so that both read the same bytes.

/// One captured UDP payload.
pub(crate) struct Golden {
    /// The id from the `# id | ...` comment line before the hex.
    pub(crate) id: &'static str,
    pub(crate) bytes: Vec<u8>,
}

const FILE: &str = include_str!("golden-datagrams.txt");

/// Every datagram in file order.
pub(crate) fn all() -> Vec<Golden> {
    parse(FILE)
}

/// Every capture of a golden file in this format (`golden-names.txt` too).
#[allow(dead_code)] // each test file uses only what it needs
pub(crate) fn parse(file: &'static str) -> Vec<Golden> {
    let mut goldens = Vec::new();
    let mut id = None;
    for line in file.lines().map(str::trim) {
        if let Some(comment) = line.strip_prefix("# ") {
            if comment.contains(" | ") {
                id = comment.split(" | ").next();
            }
        } else if !line.is_empty() {
            let id = id.take().expect("a hex line follows an id line");
            goldens.push(Golden {
                id,
                bytes: hex(line),
            });
        }
    }
    goldens
}

/// The golden datagram with this id.
pub(crate) fn by_id(id: &str) -> Vec<u8> {
    all()
        .into_iter()
        .find(|golden| golden.id == id)
        .unwrap_or_else(|| panic!("no golden datagram {id}"))
        .bytes
}

/// Decodes hex digits, ignoring whitespace.
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}
