//! Resolve once, vet, pin (SPEC §5): a webhook host is resolved exactly once per delivery; if any
//! address is blocked the delivery stops before connecting; otherwise the connection is made only
//! to the vetted addresses, so a second (rebinding) lookup cannot happen.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use url::Url;

use super::policy::{Blocked, EgressPolicy, literal_host};

/// A boxed, sendable lookup future.
pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Turns a host name into addresses. Injectable, so tests can answer what they need.
pub trait Resolve: Send + Sync + 'static {
    /// Looks `host` up once.
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> LookupFuture<'a>;
}

/// The operating system's resolver (getaddrinfo on the blocking pool).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> LookupFuture<'a> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, port)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// Where a delivery may connect: every resolved address passed the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vetted {
    /// The vetted addresses with the URL's port, in resolver order, without duplicates.
    pub addrs: Vec<SocketAddr>,
}

/// Why a destination may not be contacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The name did not resolve (or resolved to nothing).
    #[error("DNS lookup of {host} failed: {reason}")]
    Dns {
        /// The name looked up.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// At least one resolved address is blocked; nothing was contacted.
    #[error("blocked destination: {blocked}")]
    Blocked {
        /// The first blocked address and its range.
        blocked: Blocked,
        /// Every address the host resolved to.
        resolved: Vec<IpAddr>,
    },
}

/// The egress gate: the policy plus the resolver it vets.
#[derive(Clone)]
pub struct Egress {
    policy: EgressPolicy,
    resolver: Arc<dyn Resolve>,
}

impl Egress {
    /// A gate with this policy and resolver.
    pub fn new(policy: EgressPolicy, resolver: Arc<dyn Resolve>) -> Egress {
        Egress { policy, resolver }
    }

    /// The policy.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Resolves the URL's host once (IP literals are not looked up) and vets every address.
    pub async fn vet(&self, url: &Url) -> Result<Vetted, EgressError> {
        let host = url.host().ok_or_else(|| EgressError::Dns {
            host: String::new(),
            reason: "the URL has no host".into(),
        })?;
        let port = url.port_or_known_default().unwrap_or(80);
        let ips = match literal_host(&host) {
            Some(ip) => vec![ip],
            None => {
                let name = url.host_str().unwrap_or_default();
                let mut ips =
                    self.resolver
                        .lookup(name, port)
                        .await
                        .map_err(|e| EgressError::Dns {
                            host: name.to_owned(),
                            reason: e.to_string(),
                        })?;
                let mut seen = Vec::with_capacity(ips.len());
                ips.retain(|ip| {
                    let fresh = !seen.contains(ip);
                    seen.push(*ip);
                    fresh
                });
                if ips.is_empty() {
                    return Err(EgressError::Dns {
                        host: name.to_owned(),
                        reason: "no addresses".into(),
                    });
                }
                ips
            }
        };
        // Every address must pass: one bad answer among good ones still refuses (SPEC §5).
        if let Some(blocked) = ips.iter().find_map(|ip| self.policy.check(*ip).err()) {
            return Err(EgressError::Blocked {
                blocked,
                resolved: ips,
            });
        }
        Ok(Vetted {
            addrs: ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Fixed(Mutex<Vec<Vec<IpAddr>>>, Mutex<usize>);

    impl Resolve for Fixed {
        fn lookup<'a>(&'a self, _host: &'a str, _port: u16) -> LookupFuture<'a> {
            Box::pin(async move {
                *self.1.lock().unwrap() += 1;
                let mut answers = self.0.lock().unwrap();
                if answers.is_empty() {
                    return Err(io::Error::other("NXDOMAIN"));
                }
                Ok(answers.remove(0))
            })
        }
    }

    fn gate(answers: Vec<Vec<&str>>) -> (Egress, Arc<Fixed>) {
        let answers = answers
            .into_iter()
            .map(|a| a.into_iter().map(|s| s.parse().unwrap()).collect())
            .collect();
        let fixed = Arc::new(Fixed(Mutex::new(answers), Mutex::new(0)));
        (Egress::new(EgressPolicy::default(), fixed.clone()), fixed)
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[actix_web::test]
    async fn a_public_answer_is_vetted_with_the_urls_port() {
        let (egress, fixed) = gate(vec![vec!["93.184.215.14", "93.184.215.14"]]);
        let vetted = egress
            .vet(&url("https://hooks.example.com/x"))
            .await
            .unwrap();
        assert_eq!(vetted.addrs, vec!["93.184.215.14:443".parse().unwrap()]);
        assert_eq!(*fixed.1.lock().unwrap(), 1);
    }

    #[actix_web::test]
    async fn one_private_answer_among_public_ones_blocks_the_destination() {
        let (egress, _) = gate(vec![vec!["93.184.215.14", "10.0.0.7"]]);
        match egress.vet(&url("http://hooks.example.com/")).await {
            Err(EgressError::Blocked { blocked, resolved }) => {
                assert_eq!(blocked.addr(), "10.0.0.7".parse::<IpAddr>().unwrap());
                assert_eq!(resolved.len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[actix_web::test]
    async fn ip_literals_are_vetted_without_a_lookup() {
        let (egress, fixed) = gate(vec![]);
        for literal in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://[::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
        ] {
            assert!(
                matches!(
                    egress.vet(&url(literal)).await,
                    Err(EgressError::Blocked { .. })
                ),
                "{literal}"
            );
        }
        assert!(egress.vet(&url("http://1.1.1.1:8080/")).await.is_ok());
        assert_eq!(*fixed.1.lock().unwrap(), 0);
    }

    #[actix_web::test]
    async fn a_failed_or_empty_lookup_is_a_dns_error() {
        let (egress, _) = gate(vec![vec![]]);
        assert!(matches!(
            egress.vet(&url("http://empty.example/")).await,
            Err(EgressError::Dns { .. })
        ));
        assert!(matches!(
            egress.vet(&url("http://nxdomain.example/")).await,
            Err(EgressError::Dns { .. })
        ));
    }
}
