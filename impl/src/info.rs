//! INFO: Redis 7.0's sections, field names and order, so that tools that parse INFO
//! (redis-cli, Sentinel-like monitors, exporters, client libraries) read Verdis unchanged.
//!
//! `redis_version` says 7.0.15, the Redis version whose behaviour Verdis implements (clients
//! gate features on it); `verdis_version` says what is really running.

use crate::store::{unix_us, Shared, Store};
use std::fmt::Write;

/// The sections of a plain `INFO` / `INFO default`, in order.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Renders the requested sections (empty = default).
pub fn render(shared: &Shared, store: &Store, requested: &[String]) -> String {
    let mut wanted: Vec<&str> = Vec::new();
    if requested.is_empty() {
        wanted.extend(DEFAULT_SECTIONS);
    }
    for r in requested {
        match r.as_str() {
            "default" | "all" | "everything" => wanted.extend(DEFAULT_SECTIONS),
            other => {
                if let Some(s) = DEFAULT_SECTIONS.iter().find(|s| **s == other) {
                    wanted.push(s);
                }
            }
        }
    }
    let mut out = String::with_capacity(4096);
    let mut first = true;
    for s in DEFAULT_SECTIONS {
        if !wanted.contains(s) {
            continue;
        }
        if !first {
            out.push_str("\r\n");
        }
        first = false;
        section(&mut out, s, shared, store);
    }
    out
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1024.0 {
        format!("{}B", n as u64)
    } else if n < 1024.0 * 1024.0 {
        format!("{:.2}K", n / 1024.0)
    } else if n < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", n / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", n / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Resident set size from /proc/self/statm, 0 where unavailable.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cpu_times() -> (f64, f64) {
    // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks (100 Hz on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            let u = f.get(11)?.parse::<f64>().ok()? / 100.0;
            let st = f.get(12)?.parse::<f64>().ok()? / 100.0;
            Some((u, st))
        })
        .unwrap_or((0.0, 0.0))
}

fn section(out: &mut String, name: &str, shared: &Shared, store: &Store) {
    let w = out;
    let c = &store.config;
    match name {
        "server" => {
            let uptime = shared.started.elapsed().as_secs();
            let _ = write!(
                w,
                "# Server\r\nredis_version:{}\r\nverdis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\n",
                crate::REDIS_VERSION,
                crate::VERDIS_VERSION,
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                shared.run_id,
                shared.port.load(std::sync::atomic::Ordering::Relaxed),
                unix_us(),
                uptime,
                uptime / 86400,
                c.hz,
                c.hz,
                (unix_us() / 1_000_000) & ((1 << 24) - 1),
                shared.executable,
                shared
                    .config_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        }
        "clients" => {
            let _ = write!(
                w,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:0\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                shared.clients.len(),
                c.maxclients,
            );
        }
        "memory" => {
            let used = crate::alloc::allocated_bytes();
            let peak = crate::alloc::peak_bytes();
            let rss = rss_bytes();
            let total = total_system_memory();
            let frag = if used > 0 {
                rss as f64 / used as f64
            } else {
                0.0
            };
            let _ = write!(
                w,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\ntotal_system_memory:{total}\r\ntotal_system_memory_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{frag:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:0\r\nmem_clients_normal:0\r\nmem_aof_buffer:0\r\nmem_allocator:libc\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
                human_bytes(used),
                human_bytes(rss),
                human_bytes(peak),
                if peak > 0 { used as f64 * 100.0 / peak as f64 } else { 0.0 },
                human_bytes(total),
                c.maxmemory,
                human_bytes(c.maxmemory),
                c.maxmemory_policy.name(),
                rss as i64 - used as i64,
            );
        }
        "persistence" => {
            let p = &store.persist;
            let _ = write!(
                w,
                "# Persistence\r\nloading:{}\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:ok\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
                p.loading as u8,
                store.ks.dirty,
                p.bgsave.is_some() as u8,
                store.lastsave_unix,
                if p.last_bgsave_ok { "ok" } else { "err" },
                p.last_bgsave_time_sec,
                p.current_bgsave_time_sec(),
                p.rdb_saves,
                p.last_load_keys_expired,
                p.last_load_keys_loaded,
            );
        }
        "stats" => {
            let s = &store.stats;
            let k = &store.ks.stats;
            let _ = write!(
                w,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:0.00\r\ninstantaneous_output_kbps:0.00\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nexpired_stale_perc:{:.2}\r\nexpired_time_cap_reached_count:{}\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:0\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:0\r\npubsub_patterns:0\r\npubsubshard_channels:0\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:0\r\ntracking_total_items:0\r\ntracking_total_prefixes:0\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n",
                s.total_connections_received,
                s.total_commands_processed,
                store.ops.ops_per_sec(),
                s.total_net_input_bytes,
                s.total_net_output_bytes,
                s.rejected_connections,
                store.repl.node.stats.sync_full,
                store.repl.node.stats.sync_partial_ok,
                store.repl.node.stats.sync_partial_err,
                k.expired_keys,
                k.expired_stale_perc * 100.0,
                k.expired_time_cap_reached_count,
                k.keyspace_hits,
                k.keyspace_misses,
                s.total_error_replies,
                s.total_reads_processed,
                s.total_writes_processed,
            );
        }
        "replication" => {
            w.push_str(
                &store
                    .repl
                    .info(crate::store::unix_ms() as u64, &store.config),
            );
        }
        "cpu" => {
            let (user, sys) = cpu_times();
            let _ = write!(
                w,
                "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{sys:.6}\r\nused_cpu_user_main_thread:{user:.6}\r\n",
            );
        }
        "modules" => w.push_str("# Modules\r\n"),
        "errorstats" => w.push_str("# Errorstats\r\n"),
        "cluster" => w.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
        "keyspace" => {
            w.push_str("# Keyspace\r\n");
            for (i, db) in store.ks.dbs().iter().enumerate() {
                if db.is_empty() {
                    continue;
                }
                let _ = write!(
                    w,
                    "db{i}:keys={},expires={},avg_ttl=0\r\n",
                    db.len(),
                    db.expires_len()
                );
            }
        }
        _ => {}
    }
}
