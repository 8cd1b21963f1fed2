//! The optional modes of `../shared/conformance/SUITES.md` section 6, read from the
//! environment. A mode this server does not know, or a value it does not understand, is an
//! error at start: the server must never silently run in another mode than asked.

/// The modes `conformance-server` runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Modes {
    /// `RECOVERY=1`: connection state recovery, 2-minute window, middlewares skipped.
    pub recovery: bool,
    /// `PARSER=msgpack`: the MessagePack parser (`socket.io-msgpack-parser` 3.x).
    pub msgpack: bool,
    /// `ALLOW_EIO3=1`: `/socket.io/` also accepts Engine.IO v3 clients (socket.io-client
    /// 2.x), as Node's `allowEIO3: true`.
    pub allow_eio3: bool,
    /// `ADMIN=1`: the `@socket.io/admin-ui` server side on `/admin` (no auth, development
    /// mode), with CORS allowing any origin with credentials.
    pub admin: bool,
}

/// Reads one variable: unset or empty is `None`.
fn var(get: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name).filter(|v| !v.is_empty())
}

impl Modes {
    /// The modes of this process's environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// The modes given a variable lookup (for tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let recovery = match var(&get, "RECOVERY").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(v) => return Err(format!("RECOVERY={v:?}: expected 1 (or 0 / unset)")),
        };
        let msgpack = match var(&get, "PARSER").as_deref() {
            None | Some("json") => false,
            Some("msgpack") => true,
            Some(v) => return Err(format!("PARSER={v:?}: expected msgpack (or json / unset)")),
        };
        let allow_eio3 = match var(&get, "ALLOW_EIO3").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(v) => return Err(format!("ALLOW_EIO3={v:?}: expected 1 (or 0 / unset)")),
        };
        let admin = match var(&get, "ADMIN").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(v) => return Err(format!("ADMIN={v:?}: expected 1 (or 0 / unset)")),
        };
        match var(&get, "REDIS_ADAPTER").as_deref() {
            None | Some("classic" | "sharded" | "streams") => {}
            Some(v) => {
                return Err(format!(
                    "REDIS_ADAPTER={v:?}: expected classic, sharded or streams"
                ));
            }
        }
        Ok(Self {
            recovery,
            msgpack,
            allow_eio3,
            admin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(vars: &[(&str, &str)]) -> Result<Modes, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Modes::from_vars(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn known_values_and_failures() {
        assert_eq!(modes(&[]), Ok(Modes::default()));
        assert_eq!(
            modes(&[("RECOVERY", "1")]),
            Ok(Modes {
                recovery: true,
                ..Modes::default()
            })
        );
        assert_eq!(
            modes(&[("PARSER", "msgpack"), ("RECOVERY", "1")]),
            Ok(Modes {
                recovery: true,
                msgpack: true,
                ..Modes::default()
            })
        );
        assert_eq!(
            modes(&[("ALLOW_EIO3", "1"), ("REDIS_ADAPTER", "streams")]),
            Ok(Modes {
                allow_eio3: true,
                ..Modes::default()
            })
        );
        assert_eq!(
            modes(&[("ADMIN", "1")]),
            Ok(Modes {
                admin: true,
                ..Modes::default()
            })
        );
        assert_eq!(modes(&[("PARSER", "json")]), Ok(Modes::default()));
        assert_eq!(modes(&[("RECOVERY", "0")]), Ok(Modes::default()));
        for adapter in ["classic", "sharded", "streams"] {
            assert_eq!(modes(&[("REDIS_ADAPTER", adapter)]), Ok(Modes::default()));
        }
        for bad in [
            ("RECOVERY", "true"),
            ("RECOVERY", "yes"),
            ("PARSER", "MessagePack"),
            ("ALLOW_EIO3", "yes"),
            ("ADMIN", "true"),
            ("ADMIN", "yes"),
            ("REDIS_ADAPTER", "bogus"),
        ] {
            assert!(modes(&[bad]).is_err(), "{bad:?}");
        }
    }
}
