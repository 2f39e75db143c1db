//! What earlier sessions to each server ip:port showed, for the cross-session
//! rules (`version_regression`, `plaintext_fallback`). Bounded: at the cap the
//! oldest service is forgotten and counted.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use super::Observation;
use crate::time::PacketTime;
use crate::tls::ProtocolVersion;

/// One service's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceMemory {
    /// Highest version negotiated so far, and when first.
    pub best_version: Option<(ProtocolVersion, PacketTime)>,
    /// First time a TLS session to this service was seen.
    pub first_tls: Option<PacketTime>,
}

pub struct History {
    services: HashMap<SocketAddr, ServiceMemory, ahash::RandomState>,
    order: VecDeque<SocketAddr>,
    max_services: usize,
    evicted: u64,
}

impl History {
    pub fn new(max_services: usize) -> Self {
        Self {
            services: HashMap::with_hasher(ahash::RandomState::new()),
            order: VecDeque::new(),
            max_services: max_services.max(1),
            evicted: 0,
        }
    }

    pub fn get(&self, server: SocketAddr) -> Option<ServiceMemory> {
        self.services.get(&server).copied()
    }

    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    pub fn observe(&mut self, session: &Observation) {
        let Some(tls) = session.tls.as_ref() else {
            return;
        };
        if !tls.client_hello {
            return;
        }
        if !self.services.contains_key(&session.server) {
            while self.services.len() >= self.max_services {
                match self.order.pop_front() {
                    Some(oldest) => {
                        if self.services.remove(&oldest).is_some() {
                            self.evicted += 1;
                        }
                    }
                    None => break,
                }
            }
            self.order.push_back(session.server);
        }
        let memory = self
            .services
            .entry(session.server)
            .or_insert(ServiceMemory {
                best_version: None,
                first_tls: None,
            });
        memory.first_tls.get_or_insert(session.time);
        if let Some(version) = session.version() {
            if memory.best_version.is_none_or(|(best, _)| version > best) {
                memory.best_version = Some((version, session.time));
            }
        }
    }
}
