//! Persistence in the server: SAVE, BGSAVE, the `save` points, SHUTDOWN's save, and loading
//! `dir/dbfilename` at start-up.
//!
//! The snapshot design (Redis forks; Verdis cannot fork a multi-threaded process safely):
//! BGSAVE takes [`crate::db::Keyspace::snapshot`] under the store lock, which clones one
//! `Arc` per shard (O(shards), microseconds), and hands it to a std thread that writes
//! `temp-<pid>.rdb`, fsyncs it, and then takes the lock again only to rename the file over
//! `dbfilename` and record the outcome. Writes that arrive meanwhile copy the shard they touch
//! once (copy-on-write); the snapshot, and so the file, holds exactly the data at the moment
//! of BGSAVE.
//!
//! The rename happens under the store lock and only if no later save superseded this one
//! (SHUTDOWN saves synchronously even while a BGSAVE runs, as Redis kills its child first), so
//! an older snapshot can never replace a newer file.
//!
//! The process's working directory is `dir` (the server changes into it at start-up, as Redis
//! does), so `dbfilename` and the temp file are resolved against it.

use super::read::{load_reader, LoadOptions};
use super::write::{write_rdb, WriteOptions};
use super::ReplAux;
use crate::store::{unix_ms, Shared, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After a failed BGSAVE, save points wait this long before trying again (Redis's
/// CONFIG_BGSAVE_RETRY_DELAY).
const BGSAVE_RETRY_DELAY_SECS: i64 = 5;
/// How often the save points are checked.
const CRON_PERIOD: Duration = Duration::from_millis(100);

/// Persistence state in the store (INFO persistence).
#[derive(Debug)]
pub struct PersistState {
    /// The BGSAVE in progress, if any.
    pub bgsave: Option<BgSave>,
    /// BGSAVE SCHEDULE (or a BGSAVE inside a transaction in Redis): start when possible.
    pub bgsave_scheduled: bool,
    pub last_bgsave_ok: bool,
    /// Duration of the last BGSAVE, -1 if none yet.
    pub last_bgsave_time_sec: i64,
    /// Unix seconds of the last BGSAVE attempt.
    pub last_bgsave_try_unix: i64,
    /// `dirty` when the running BGSAVE started: what its success clears.
    pub dirty_before_bgsave: u64,
    /// Saves started (SAVE and BGSAVE).
    pub rdb_saves: u64,
    pub last_load_keys_loaded: u64,
    pub last_load_keys_expired: u64,
    /// An RDB is being loaded (INFO `loading`).
    pub loading: bool,
    /// The replication aux fields of the RDB loaded at start-up, for a PSYNC after restart.
    pub loaded_repl: Option<ReplAux>,
    /// Bumped by every save; a BGSAVE whose number is no longer current does not rename.
    generation: u64,
}

/// A BGSAVE in progress.
#[derive(Debug)]
pub struct BgSave {
    pub started: Instant,
    generation: u64,
}

impl Default for PersistState {
    fn default() -> Self {
        PersistState {
            bgsave: None,
            bgsave_scheduled: false,
            last_bgsave_ok: true,
            last_bgsave_time_sec: -1,
            last_bgsave_try_unix: 0,
            dirty_before_bgsave: 0,
            rdb_saves: 0,
            last_load_keys_loaded: 0,
            last_load_keys_expired: 0,
            loading: false,
            loaded_repl: None,
            generation: 0,
        }
    }
}

impl PersistState {
    /// INFO rdb_current_bgsave_time_sec.
    pub fn current_bgsave_time_sec(&self) -> i64 {
        self.bgsave
            .as_ref()
            .map(|b| b.started.elapsed().as_secs() as i64)
            .unwrap_or(-1)
    }
}

/// Why BGSAVE did not start.
#[derive(Debug, PartialEq, Eq)]
pub enum BgsaveRefused {
    InProgress,
    /// The thread could not be started.
    Spawn(String),
}

/// Where the RDB lives: `dbfilename` in `dir`. The server has changed into `dir`, so a
/// relative `dir` is the working directory itself.
fn rdb_path(store: &Store) -> std::io::Result<PathBuf> {
    let dir = Path::new(&store.config.dir);
    let base = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()?
    };
    Ok(base.join(&store.config.dbfilename))
}

fn write_options(store: &Store, now_ms: i64) -> WriteOptions {
    WriteOptions {
        compression: store.config.rdbcompression,
        checksum: store.config.rdbchecksum,
        ctime_unix: now_ms / 1000,
        used_mem_bytes: crate::alloc::allocated_bytes(),
        // repl-id / repl-offset, so a restarted node can resume with a partial resync.
        repl: crate::replication::save_aux(&store.repl),
    }
}

/// Writes `dbs` to `temp` and fsyncs it. The temp file is removed on failure.
fn write_temp(temp: &Path, dbs: &[crate::db::Db], opts: &WriteOptions) -> std::io::Result<u64> {
    let result = std::fs::File::create(temp).and_then(|mut f| {
        let n = write_rdb(&mut f, dbs, opts)?;
        f.sync_all()?;
        Ok(n)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(temp);
    }
    result
}

/// Renames the temp file over the RDB and syncs the directory entry.
fn commit(temp: &Path, path: &Path) -> std::io::Result<()> {
    if let Err(e) = std::fs::rename(temp, path) {
        let _ = std::fs::remove_file(temp);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// SAVE (and SHUTDOWN's save): writes the dataset synchronously, holding the lock.
pub fn save_sync(store: &mut Store) -> Result<(), String> {
    let now_ms = unix_ms();
    let path = rdb_path(store).map_err(|e| format!("Failed to resolve the RDB path: {e}"))?;
    // Not BGSAVE's temp file: SHUTDOWN saves while a BGSAVE may still be writing its own.
    let temp = path.with_file_name(format!("temp-save-{}.rdb", std::process::id()));
    // A BGSAVE still running must not rename its older snapshot over this one.
    store.persist.generation += 1;
    store.persist.rdb_saves += 1;
    let snapshot = store.ks.snapshot();
    let opts = write_options(store, now_ms);
    let result = write_temp(&temp, &snapshot, &opts).and_then(|_| commit(&temp, &path));
    match result {
        Ok(()) => {
            tracing::info!("DB saved on disk");
            store.ks.dirty = 0;
            store.lastsave_unix = now_ms / 1000;
            store.persist.last_bgsave_ok = true;
            Ok(())
        }
        Err(e) => {
            let msg = format!("Failed saving the DB to {}: {e}", path.display());
            tracing::warn!("{msg}");
            Err(msg)
        }
    }
}

/// BGSAVE: snapshot under the lock, write in a thread. The thread reports back through
/// `shared`'s lock when done.
pub fn start_bgsave(shared: &Arc<Shared>, store: &mut Store) -> Result<(), BgsaveRefused> {
    if store.persist.bgsave.is_some() {
        return Err(BgsaveRefused::InProgress);
    }
    let now_ms = unix_ms();
    let path = rdb_path(store).map_err(|e| BgsaveRefused::Spawn(e.to_string()))?;
    let temp = path.with_file_name(format!("temp-{}.rdb", std::process::id()));
    store.persist.generation += 1;
    let generation = store.persist.generation;
    let snapshot = store.ks.snapshot();
    let opts = write_options(store, now_ms);
    let thread_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("verdis-bgsave".into())
        .spawn(move || {
            let result = write_temp(&temp, &snapshot, &opts);
            drop(snapshot);
            let mut store = thread_shared.store.lock();
            finish_bgsave(&mut store, generation, result, &temp, &path);
        });
    if let Err(e) = spawned {
        tracing::warn!("Can't save in background: {e}");
        store.persist.last_bgsave_ok = false;
        store.persist.last_bgsave_try_unix = now_ms / 1000;
        return Err(BgsaveRefused::Spawn(e.to_string()));
    }
    store.persist.bgsave = Some(BgSave {
        started: Instant::now(),
        generation,
    });
    store.persist.bgsave_scheduled = false;
    store.persist.dirty_before_bgsave = store.ks.dirty;
    store.persist.last_bgsave_try_unix = now_ms / 1000;
    store.persist.rdb_saves += 1;
    tracing::info!("Background saving started");
    Ok(())
}

/// Runs in the BGSAVE thread with the lock held: renames the file (unless a later save
/// superseded this one) and records the outcome.
fn finish_bgsave(
    store: &mut Store,
    generation: u64,
    result: std::io::Result<u64>,
    temp: &Path,
    path: &Path,
) {
    // One BGSAVE at a time: the one in progress is this one.
    let running = store.persist.bgsave.take();
    debug_assert!(matches!(&running, Some(b) if b.generation == generation));
    if store.persist.generation != generation {
        // A synchronous save (SHUTDOWN) ran meanwhile: its file is newer, keep it.
        tracing::info!("Background saving superseded by a newer save; its file is discarded");
        let _ = std::fs::remove_file(temp);
        return;
    }
    let started = running.map(|b| b.started).unwrap_or_else(Instant::now);
    store.persist.last_bgsave_time_sec = started.elapsed().as_secs() as i64;
    match result.and_then(|_| commit(temp, path)) {
        Ok(()) => {
            tracing::info!("Background saving terminated with success");
            store.ks.dirty = store
                .ks
                .dirty
                .saturating_sub(store.persist.dirty_before_bgsave);
            store.lastsave_unix = unix_ms() / 1000;
            store.persist.last_bgsave_ok = true;
        }
        Err(e) => {
            tracing::warn!("Background saving error: {}: {e}", path.display());
            store.persist.last_bgsave_ok = false;
        }
    }
}

/// The cron step: a scheduled BGSAVE, or a save point reached (Redis's serverCron rule:
/// `dirty >= changes` and more than `seconds` since the last save, and not within the retry
/// delay after a failure).
pub fn cron_step(shared: &Arc<Shared>, store: &mut Store, now_unix: i64) {
    if store.persist.bgsave.is_some() {
        return;
    }
    let may_try = store.persist.last_bgsave_ok
        || now_unix - store.persist.last_bgsave_try_unix > BGSAVE_RETRY_DELAY_SECS;
    if !may_try {
        return;
    }
    if store.persist.bgsave_scheduled {
        let _ = start_bgsave(shared, store);
        return;
    }
    let dirty = store.ks.dirty;
    let since = now_unix - store.lastsave_unix;
    let due = store
        .config
        .save
        .iter()
        .find(|sp| dirty >= sp.changes && since > sp.seconds as i64)
        .copied();
    if let Some(sp) = due {
        tracing::info!(
            "{} changes in {} seconds. Saving...",
            sp.changes,
            sp.seconds
        );
        let _ = start_bgsave(shared, store);
    }
}

/// The persistence cron task: checks the save points ten times a second.
pub async fn cron(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(CRON_PERIOD).await;
        let mut store = shared.store.lock();
        cron_step(&shared, &mut store, unix_ms() / 1000);
    }
}

/// SHUTDOWN's save: with save points configured unless NOSAVE, or always with SAVE.
pub fn shutdown_save(store: &mut Store, save: bool, nosave: bool) -> Result<(), String> {
    if nosave || (!save && store.config.save.is_empty()) {
        return Ok(());
    }
    tracing::info!("Saving the final RDB snapshot before exiting.");
    save_sync(store).inspect_err(|_| tracing::warn!("Error trying to save the DB, can't exit."))
}

/// Loads `dbfilename` from the working directory at start-up, if it exists. The error names
/// the file and says what is wrong with it; the server must not start.
pub fn load_at_start(shared: &Shared) -> Result<(), String> {
    let mut store = shared.store.lock();
    let path = rdb_path(&store).map_err(|e| format!("Can't resolve the RDB path: {e}"))?;
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(format!(
                "Fatal error loading the DB from {}: {e}. Exiting.",
                path.display()
            ))
        }
    };
    let started = Instant::now();
    let opts = LoadOptions {
        databases: store.config.databases,
        // A master drops keys already expired, as Redis does when loading its own file.
        drop_expired_before_ms: Some(unix_ms()),
        verify_checksum: store.config.rdbchecksum,
        max_string_bytes: super::MAX_STRING_BYTES.max(store.config.proto_max_bulk_len),
    };
    store.persist.loading = true;
    let loaded = load_reader(file, &opts);
    store.persist.loading = false;
    let loaded = loaded.map_err(|e| {
        format!(
            "Fatal error loading the DB from {}: {e}. Exiting.",
            path.display()
        )
    })?;
    if let Some(v) = loaded.aux_value("redis-ver") {
        tracing::info!(
            "Loading RDB produced by version {}",
            String::from_utf8_lossy(v)
        );
    }
    if let Some(ctime) = loaded
        .aux_value("ctime")
        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
    {
        tracing::info!("RDB age {} seconds", unix_ms() / 1000 - ctime);
    }
    tracing::info!(
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        loaded.keys_loaded,
        loaded.keys_expired
    );
    store.persist.last_load_keys_loaded = loaded.keys_loaded;
    store.persist.last_load_keys_expired = loaded.keys_expired;
    store.persist.loaded_repl = loaded.repl;
    store.ks.replace_all(loaded.dbs);
    store.ks.dirty = 0;
    tracing::info!(
        "DB loaded from disk: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Changes into `dir` at start-up, as Redis does, so the RDB and its temp file live there.
pub fn enter_dir(dir: &str) -> Result<(), String> {
    if dir.is_empty() {
        return Ok(());
    }
    std::env::set_current_dir(dir).map_err(|e| format!("Can't chdir to '{dir}': {e}"))
}

#[cfg(test)]
mod tests {
    //! The save paths against a real directory, without a server process.
    use super::*;
    use crate::config::Config;
    use crate::db::Value;
    use crate::sbytes::SBytes;

    fn shared_in(dir: &Path) -> Arc<Shared> {
        let mut config = Config::default();
        config.dir = dir.to_string_lossy().into_owned();
        config.dbfilename = "unit.rdb".into();
        Arc::new(Shared::new(config, None))
    }

    fn set(store: &mut Store, key: &str, value: &str) {
        let v = Value::Str(SBytes::new(value.as_bytes()));
        store.ks.set(0, key.as_bytes(), v, false);
    }

    fn load_file(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
        let data = std::fs::read(path).expect("the RDB exists");
        let l = crate::rdb::read::load_slice(&data, &LoadOptions::new(16)).expect("loads");
        let mut kv: Vec<_> = l.dbs[0]
            .iter()
            .map(|(k, v, _)| {
                let Value::Str(s) = v;
                (k.to_vec(), s.to_vec())
            })
            .collect();
        kv.sort();
        kv
    }

    fn wait_idle(shared: &Shared) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared.store.lock().persist.bgsave.is_some() {
            assert!(Instant::now() < deadline, "BGSAVE did not finish");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_save_during_a_bgsave_wins_and_the_bgsave_ends_cleanly() {
        // Why: SHUTDOWN saves while a BGSAVE may run; the older snapshot must not replace
        // the newer file, and the server must not stay "in progress" forever.
        let dir = std::env::temp_dir().join(format!("verdis-unit-save-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shared = shared_in(&dir);
        {
            let mut store = shared.store.lock();
            set(&mut store, "k", "old");
            start_bgsave(&shared, &mut store).expect("starts");
            assert_eq!(
                start_bgsave(&shared, &mut store),
                Err(BgsaveRefused::InProgress)
            );
            set(&mut store, "k", "new");
            save_sync(&mut store).expect("saves");
            assert_eq!(store.ks.dirty, 0);
        }
        wait_idle(&shared);
        assert_eq!(
            load_file(&dir.join("unit.rdb")),
            vec![(b"k".to_vec(), b"new".to_vec())]
        );
        // A later BGSAVE runs normally and clears the changes it saved.
        {
            let mut store = shared.store.lock();
            set(&mut store, "k2", "v2");
            start_bgsave(&shared, &mut store).expect("starts again");
            set(&mut store, "k3", "after");
        }
        wait_idle(&shared);
        let store = shared.store.lock();
        assert!(store.persist.last_bgsave_ok);
        assert_eq!(store.ks.dirty, 1, "the write after BGSAVE stays unsaved");
        drop(store);
        assert_eq!(load_file(&dir.join("unit.rdb")).len(), 2);
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().starts_with("temp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn save_points_follow_redis_rules() {
        let dir = std::env::temp_dir().join(format!("verdis-unit-points-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shared = shared_in(&dir);
        let mut store = shared.store.lock();
        store.config.save = vec![crate::config::SavePoint {
            seconds: 10,
            changes: 2,
        }];
        let t0 = store.lastsave_unix;
        set(&mut store, "a", "1");
        set(&mut store, "b", "2");
        // Enough changes, but not more than 10 s since the last save.
        cron_step(&shared, &mut store, t0 + 10);
        assert!(store.persist.bgsave.is_none());
        cron_step(&shared, &mut store, t0 + 11);
        assert!(store.persist.bgsave.is_some());
        drop(store);
        wait_idle(&shared);
        let mut store = shared.store.lock();
        assert_eq!(store.ks.dirty, 0);
        // After a failure, save points wait 5 s before retrying.
        store.persist.last_bgsave_ok = false;
        store.persist.last_bgsave_try_unix = t0 + 100;
        store.lastsave_unix = t0;
        set(&mut store, "c", "3");
        set(&mut store, "d", "4");
        cron_step(&shared, &mut store, t0 + 105);
        assert!(store.persist.bgsave.is_none());
        cron_step(&shared, &mut store, t0 + 106);
        assert!(store.persist.bgsave.is_some());
        drop(store);
        wait_idle(&shared);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
