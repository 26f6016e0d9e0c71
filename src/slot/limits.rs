//! Per-slot limits (the GetMailslotInfo / SetMailslotInfo figures) and the
//! `user.mailslot.*` extended attributes that show and change them.

use std::time::Duration;

use super::SlotError;

/// How long a read waits on an empty queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadTimeout {
    /// Wait until a message arrives (MAILSLOT_WAIT_FOREVER).
    Forever,
    /// Wait this long, then fail with ETIMEDOUT; zero means "never wait".
    After(Duration),
}

impl ReadTimeout {
    /// Parses the decimal milliseconds form used by `-o timeout=` and the
    /// xattr: `-1` is forever.
    pub fn parse_millis(text: &str) -> Result<ReadTimeout, SlotError> {
        match text.trim() {
            "-1" => Ok(ReadTimeout::Forever),
            t => t
                .parse::<u32>()
                .map(|ms| ReadTimeout::After(Duration::from_millis(ms.into())))
                .map_err(|_| SlotError::InvalidValue),
        }
    }

    /// The decimal milliseconds form, `-1` for forever.
    pub fn to_millis_text(self) -> String {
        match self {
            ReadTimeout::Forever => "-1".to_owned(),
            ReadTimeout::After(d) => d.as_millis().to_string(),
        }
    }
}

/// The limits one slot enforces. Each slot starts with the mount-wide
/// defaults; its owner may change them afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message a client may write (EMSGSIZE above it).
    pub max_message_size: u32,
    /// How long a read waits on an empty queue.
    pub read_timeout: ReadTimeout,
    /// Most messages queued at once (ENOBUFS beyond).
    pub quota_messages: u32,
    /// Most payload bytes queued at once (ENOBUFS beyond).
    pub quota_bytes: u64,
}

/// Default maximum message size: 64 KiB, as Windows' `nMaxMessageSize = 0`
/// does not bound it but a Linux user expects a sane cap.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 64 * 1024;
/// Default message quota per slot.
pub const DEFAULT_QUOTA_MESSAGES: u32 = 65_536;
/// Default byte quota per slot.
pub const DEFAULT_QUOTA_BYTES: u64 = 64 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            read_timeout: ReadTimeout::Forever,
            quota_messages: DEFAULT_QUOTA_MESSAGES,
            quota_bytes: DEFAULT_QUOTA_BYTES,
        }
    }
}

impl Limits {
    /// Checks the limits against the largest message the kernel delivers in
    /// one request (`transport_max`): a larger write would reach us split
    /// into pieces, and a message must never be split.
    pub fn validate(&self, transport_max: u32) -> Result<(), String> {
        if self.max_message_size == 0 || self.max_message_size > transport_max {
            return Err(format!(
                "max message size must be between 1 and {transport_max} bytes"
            ));
        }
        if self.quota_messages == 0 {
            return Err("the message quota must be at least 1".to_owned());
        }
        if self.quota_bytes < u64::from(self.max_message_size) {
            return Err("the byte quota must hold at least one largest message".to_owned());
        }
        Ok(())
    }
}

/// The figures a slot reports: its limits plus its queue and totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    /// The slot's current limits.
    pub limits: Limits,
    /// Size of the next message, if any.
    pub next_size: Option<u32>,
    /// Messages waiting.
    pub message_count: u32,
    /// Payload bytes waiting.
    pub queued_bytes: u64,
    /// The process that created the slot (0 when it is not visible from
    /// the daemon's pid namespace).
    pub owner_pid: u32,
    /// Messages ever queued.
    pub received: u64,
    /// Messages ever read.
    pub read: u64,
    /// Messages refused for quota or discarded (empty network messages).
    pub dropped: u64,
    /// Reads waiting for a message.
    pub waiting_readers: u32,
}

/// One `user.mailslot.*` extended attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoAttr {
    MaxMessageSize,
    ReadTimeoutMs,
    NextSize,
    MessageCount,
    QueuedBytes,
    QuotaMessages,
    QuotaBytes,
    OwnerPid,
    Received,
    Read,
    Dropped,
    WaitingReaders,
}

impl InfoAttr {
    /// Every attribute, in the order `listxattr` reports them: the seven
    /// GetMailslotInfo figures, then the totals `mailslotfs status` shows.
    pub const ALL: [InfoAttr; 12] = [
        InfoAttr::MaxMessageSize,
        InfoAttr::ReadTimeoutMs,
        InfoAttr::NextSize,
        InfoAttr::MessageCount,
        InfoAttr::QueuedBytes,
        InfoAttr::QuotaMessages,
        InfoAttr::QuotaBytes,
        InfoAttr::OwnerPid,
        InfoAttr::Received,
        InfoAttr::Read,
        InfoAttr::Dropped,
        InfoAttr::WaitingReaders,
    ];

    /// The full attribute name, e.g. `user.mailslot.next_size`.
    pub fn name(self) -> &'static str {
        match self {
            InfoAttr::MaxMessageSize => "user.mailslot.max_message_size",
            InfoAttr::ReadTimeoutMs => "user.mailslot.read_timeout_ms",
            InfoAttr::NextSize => "user.mailslot.next_size",
            InfoAttr::MessageCount => "user.mailslot.message_count",
            InfoAttr::QueuedBytes => "user.mailslot.queued_bytes",
            InfoAttr::QuotaMessages => "user.mailslot.quota_messages",
            InfoAttr::QuotaBytes => "user.mailslot.quota_bytes",
            InfoAttr::OwnerPid => "user.mailslot.owner_pid",
            InfoAttr::Received => "user.mailslot.received",
            InfoAttr::Read => "user.mailslot.read",
            InfoAttr::Dropped => "user.mailslot.dropped",
            InfoAttr::WaitingReaders => "user.mailslot.waiting_readers",
        }
    }

    /// The name without its `user.mailslot.` prefix, e.g. `next_size`.
    pub fn short_name(self) -> &'static str {
        self.name().trim_start_matches("user.mailslot.")
    }

    /// The attribute with this name, if it is one of ours.
    pub fn from_name(name: &[u8]) -> Option<InfoAttr> {
        InfoAttr::ALL
            .into_iter()
            .find(|a| a.name().as_bytes() == name)
    }

    /// The value as decimal text.
    pub fn format(self, info: &SlotInfo) -> String {
        match self {
            InfoAttr::MaxMessageSize => info.limits.max_message_size.to_string(),
            InfoAttr::ReadTimeoutMs => info.limits.read_timeout.to_millis_text(),
            InfoAttr::NextSize => info.next_size.map_or(-1, i64::from).to_string(),
            InfoAttr::MessageCount => info.message_count.to_string(),
            InfoAttr::QueuedBytes => info.queued_bytes.to_string(),
            InfoAttr::QuotaMessages => info.limits.quota_messages.to_string(),
            InfoAttr::QuotaBytes => info.limits.quota_bytes.to_string(),
            InfoAttr::OwnerPid => info.owner_pid.to_string(),
            InfoAttr::Received => info.received.to_string(),
            InfoAttr::Read => info.read.to_string(),
            InfoAttr::Dropped => info.dropped.to_string(),
            InfoAttr::WaitingReaders => info.waiting_readers.to_string(),
        }
    }

    /// Applies a new value to `limits` (SetMailslotInfo). The figures that
    /// describe the queue are read-only.
    pub fn apply(self, value: &[u8], limits: &mut Limits) -> Result<(), SlotError> {
        let text = std::str::from_utf8(value)
            .map_err(|_| SlotError::InvalidValue)?
            .trim_end_matches(['\0', '\n']);
        let number = || {
            text.trim()
                .parse::<u64>()
                .map_err(|_| SlotError::InvalidValue)
        };
        match self {
            InfoAttr::MaxMessageSize => {
                limits.max_message_size =
                    u32::try_from(number()?).map_err(|_| SlotError::InvalidValue)?
            }
            InfoAttr::ReadTimeoutMs => limits.read_timeout = ReadTimeout::parse_millis(text)?,
            InfoAttr::QuotaMessages => {
                limits.quota_messages =
                    u32::try_from(number()?).map_err(|_| SlotError::InvalidValue)?
            }
            InfoAttr::QuotaBytes => limits.quota_bytes = number()?,
            InfoAttr::NextSize
            | InfoAttr::MessageCount
            | InfoAttr::QueuedBytes
            | InfoAttr::OwnerPid
            | InfoAttr::Received
            | InfoAttr::Read
            | InfoAttr::Dropped
            | InfoAttr::WaitingReaders => return Err(SlotError::NotPermitted),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_text_round_trips() {
        assert_eq!(ReadTimeout::parse_millis("-1"), Ok(ReadTimeout::Forever));
        assert_eq!(
            ReadTimeout::parse_millis("250"),
            Ok(ReadTimeout::After(Duration::from_millis(250)))
        );
        assert_eq!(
            ReadTimeout::parse_millis("-2"),
            Err(SlotError::InvalidValue)
        );
        assert_eq!(ReadTimeout::parse_millis("x"), Err(SlotError::InvalidValue));
        assert_eq!(ReadTimeout::Forever.to_millis_text(), "-1");
    }

    #[test]
    fn attributes_format_and_apply() {
        let mut info = SlotInfo {
            limits: Limits::default(),
            next_size: None,
            message_count: 0,
            queued_bytes: 0,
            owner_pid: 0,
            received: 0,
            read: 0,
            dropped: 0,
            waiting_readers: 0,
        };
        assert_eq!(InfoAttr::NextSize.format(&info), "-1");
        assert_eq!(InfoAttr::ReadTimeoutMs.format(&info), "-1");
        InfoAttr::MaxMessageSize
            .apply(b"100\n", &mut info.limits)
            .unwrap();
        assert_eq!(info.limits.max_message_size, 100);
        assert_eq!(
            InfoAttr::MessageCount.apply(b"1", &mut info.limits),
            Err(SlotError::NotPermitted)
        );
        assert_eq!(
            InfoAttr::QuotaMessages.apply(b"-5", &mut info.limits),
            Err(SlotError::InvalidValue)
        );
        for attr in InfoAttr::ALL {
            assert_eq!(InfoAttr::from_name(attr.name().as_bytes()), Some(attr));
        }
        assert_eq!(InfoAttr::from_name(b"user.mailslot.nope"), None);
    }

    #[test]
    fn limits_refuse_messages_the_kernel_would_split() {
        let mut l = Limits::default();
        assert!(l.validate(1 << 20).is_ok());
        l.max_message_size = (1 << 20) + 1;
        assert!(l.validate(1 << 20).is_err());
        l = Limits {
            quota_messages: 0,
            ..Limits::default()
        };
        assert!(l.validate(1 << 20).is_err());
    }
}
