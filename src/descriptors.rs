//! The file-descriptor budget: how many connections the open-file limit
//! (`RLIMIT_NOFILE`, `ulimit -n`) leaves room for.
//!
//! Every connection is a descriptor, and so is every database file, snapshot
//! being written, source pipe or socket, upload connection and listener. If
//! connections may use them all, the server fails in the worst places: a
//! motion snapshot or a store write gets "Too many open files" while the
//! sockets that exhausted them sit idle. So the connection cap is derived
//! from the limit at start, keeping a reserve for the rest, and the cap
//! refuses the extra connection before the limit refuses a file.

/// Descriptors always kept back from connections: stdio, the runtime's
/// epoll and wake-up descriptors, the listeners, the store's database with
/// its `-wal` and `-shm` (twice: store and upload queue), a snapshot being
/// written plus the folder scans of retention, a source's pipes or socket,
/// and a few upload and webhook connections. About 30 in steady state; the
/// rest is headroom.
const RESERVE_MIN: u64 = 64;

/// Besides [`RESERVE_MIN`], an eighth of a larger limit is kept back too, so
/// bursts (several cameras, retries piling up) still find descriptors.
const RESERVE_SHARE: u64 = 8;

/// What the open-file limit leaves for connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// The soft open-file limit, `None` when unlimited.
    pub limit: Option<u64>,
    /// Descriptors kept for everything but connections.
    pub reserve: u64,
    /// Connections that fit (at least 1).
    pub connections: usize,
}

impl FdBudget {
    /// The budget for this process's current soft limit.
    pub fn probe() -> FdBudget {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        FdBudget::for_limit(limit)
    }

    /// The budget for a soft limit of `limit` descriptors.
    pub fn for_limit(limit: Option<u64>) -> FdBudget {
        let Some(limit) = limit else {
            return FdBudget {
                limit: None,
                reserve: RESERVE_MIN,
                connections: usize::MAX,
            };
        };
        let reserve = RESERVE_MIN.max(limit / RESERVE_SHARE);
        let connections = usize::try_from(limit.saturating_sub(reserve))
            .unwrap_or(usize::MAX)
            .max(1);
        FdBudget {
            limit: Some(limit),
            reserve,
            connections,
        }
    }
}

/// Raises the soft open-file limit to the hard one, as servers commonly do
/// (the Go runtime does it for every program): the soft limit of 1024 that
/// many systems start with is a leftover of `select()`, which lookout does
/// not use. Returns the old and new soft limits when it changed something.
pub fn raise_soft_limit() -> Option<(u64, u64)> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    let (Some(soft), Some(hard)) = (now.current, now.maximum) else {
        return None;
    };
    if hard <= soft {
        return None;
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    )
    .ok()?;
    Some((soft, hard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_grows_with_the_limit() {
        let small = FdBudget::for_limit(Some(1024));
        assert_eq!(small.reserve, 128);
        assert_eq!(small.connections, 896);
        let tiny = FdBudget::for_limit(Some(100));
        assert_eq!(tiny.reserve, 64);
        assert_eq!(tiny.connections, 36);
        assert_eq!(FdBudget::for_limit(Some(10)).connections, 1);
        assert_eq!(FdBudget::for_limit(None).connections, usize::MAX);
    }

    #[test]
    fn limits_follow_the_budget() {
        use crate::config::Limits;
        let l = Limits::for_budget(&FdBudget::for_limit(Some(1024)));
        assert_eq!(
            (l.max_connections, l.max_viewers, l.max_sse),
            (896, 256, 448)
        );
        let l = Limits::for_budget(&FdBudget::for_limit(Some(100)));
        assert_eq!((l.max_connections, l.max_viewers, l.max_sse), (36, 18, 18));
        let l = Limits::for_budget(&FdBudget::for_limit(Some(1 << 20)));
        assert_eq!(
            (l.max_connections, l.max_viewers, l.max_sse),
            (4096, 256, 2048)
        );
    }
}
