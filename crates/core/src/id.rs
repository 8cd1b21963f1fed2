//! [`SocketId`]: the public id of a socket in a namespace.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// The public id of a socket (Node's `socket.id`): random, unique per server, the name of the
/// socket's own room. Cheap to clone; reads as a `&str`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(Arc<str>);

impl SocketId {
    /// An id from its text.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a shared string (what rooms are named with).
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }
}

impl Deref for SocketId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SocketId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SocketId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for SocketId {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl From<String> for SocketId {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl From<Arc<str>> for SocketId {
    fn from(s: Arc<str>) -> Self {
        Self(s)
    }
}

impl From<SocketId> for Arc<str> {
    fn from(id: SocketId) -> Self {
        id.0
    }
}

impl From<SocketId> for String {
    fn from(id: SocketId) -> Self {
        id.0.to_string()
    }
}

impl PartialEq<str> for SocketId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for SocketId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for SocketId {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<SocketId> for str {
    fn eq(&self, other: &SocketId) -> bool {
        self == &*other.0
    }
}

impl PartialEq<SocketId> for &str {
    fn eq(&self, other: &SocketId) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<SocketId> for String {
    fn eq(&self, other: &SocketId) -> bool {
        **self == *other.0
    }
}

impl PartialEq<String> for &SocketId {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<&SocketId> for String {
    fn eq(&self, other: &&SocketId) -> bool {
        **self == *other.0
    }
}

impl serde::Serialize for SocketId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SocketId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::SocketId;

    #[test]
    fn reads_as_str() {
        let id = SocketId::from("abc");
        assert_eq!(id, "abc");
        assert_eq!("abc", id);
        assert_eq!(id.len(), 3);
        assert_eq!(id.to_string(), "abc");
        assert_eq!(format!("{id:?}"), "\"abc\"");
        let mut m = HashMap::new();
        m.insert(id.clone(), 1);
        assert_eq!(m.get("abc"), Some(&1));
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"abc\"");
        assert_ne!(id, SocketId::from("abd"));
    }
}
