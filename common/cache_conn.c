/*
 * cache_conn - the cache's connection: open, schema migrations, the
 * prepared statements, the lock (bounded for readers), errors in words,
 * and healing (a corrupt file moved aside and a fresh one made). The rows
 * themselves are cache.c's; see cache.h for the interface.
 */
#include "cache_int.h"
#include "cache_row.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

/* Schema steps, applied in order; step N takes version N-1 to N. Append only. */
static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE domains (domain TEXT PRIMARY KEY NOT NULL, txt_id TEXT,"
    " has_policy INTEGER NOT NULL DEFAULT 0, mode TEXT, max_age INTEGER NOT NULL DEFAULT 0,"
    " mx TEXT, policy_text TEXT, fetched_at INTEGER NOT NULL DEFAULT 0,"
    " expires_at INTEGER NOT NULL DEFAULT 0, checked_at INTEGER NOT NULL DEFAULT 0,"
    " last_used INTEGER NOT NULL DEFAULT 0, status TEXT, dnssec TEXT, last_error TEXT,"
    " fetch_failed_id TEXT, fetch_failed_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX domains_expires_at ON domains(expires_at);"
    "CREATE INDEX domains_last_used ON domains(last_used);"
    "CREATE TABLE mx_probes (host TEXT PRIMARY KEY NOT NULL,"
    " probed_at INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL DEFAULT 0,"
    " starttls INTEGER NOT NULL DEFAULT 0, tls_version TEXT,"
    " cert_valid INTEGER NOT NULL DEFAULT 0, error TEXT);",
    /* 2: MX sets with their DNS TTL; a domain's set goes with its row. */
    "CREATE TABLE mx_sets (domain TEXT PRIMARY KEY NOT NULL, hosts TEXT NOT NULL,"
    " fetched_at INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL DEFAULT 0,"
    " dnssec TEXT);"
    "CREATE TRIGGER domains_delete_mx_set AFTER DELETE ON domains"
    " BEGIN DELETE FROM mx_sets WHERE domain = old.domain; END;",
    /* 3: STARTTLS probes per MX host, address and port (probecache.c owns the values). */
    "CREATE TABLE tls_probes (host TEXT NOT NULL, address TEXT NOT NULL,"
    " port INTEGER NOT NULL, status TEXT NOT NULL, grade TEXT NOT NULL,"
    " rfc8461 INTEGER NOT NULL DEFAULT 0, tls INTEGER NOT NULL DEFAULT 0, reason TEXT,"
    " protocol TEXT, cipher TEXT, cert_names TEXT, cert_not_after INTEGER NOT NULL DEFAULT 0,"
    " probed_at INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (host, address, port));"
    "CREATE INDEX tls_probes_expires_at ON tls_probes(expires_at);"
    "CREATE INDEX tls_probes_probed_at ON tls_probes(probed_at);",
    /* 4: DANE (RFC 7672) beside each probe: its outcome, the matching record
     * or why it failed, and the host's TLSA records for people. */
    "ALTER TABLE tls_probes ADD COLUMN dane TEXT;"
    "ALTER TABLE tls_probes ADD COLUMN dane_detail TEXT;"
    "ALTER TABLE tls_probes ADD COLUMN tlsa TEXT;",
    /* 5: WebPKI judged beside DANE (probecache.h, pkix); NULL in older rows. */
    "ALTER TABLE tls_probes ADD COLUMN pkix INTEGER;",
    /* 6: verdict statistics per day, domain, action, outcome, path kind, rule
     * and dry run (cache_stats.h); several processes add to one row. */
    "CREATE TABLE verdict_stats (day TEXT NOT NULL, domain TEXT NOT NULL,"
    " action TEXT NOT NULL, outcome TEXT NOT NULL, path TEXT NOT NULL, rule TEXT NOT NULL,"
    " dry_run INTEGER NOT NULL DEFAULT 0, count INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, domain, action, outcome, path, rule, dry_run));",
    /* 7: where a row came from (cache.h): NULL learnt here, else the fleet
     * host that learnt it; older rows read as learnt here. */
    "ALTER TABLE domains ADD COLUMN source TEXT;"
    "ALTER TABLE tls_probes ADD COLUMN source TEXT;",
};

_Static_assert(NELEM(migrations) == CACHE_SCHEMA_VERSION, "one migration step per version");

/* The columns in the order of cache_row's values. */
#define DOMAIN_COLS CACHE_ROW_DOMAIN_COLUMNS
#define PROBE_COLS CACHE_ROW_PROBE_COLUMNS
#define SELECT_DOMAINS "SELECT " DOMAIN_COLS " FROM domains WHERE "
/* PRAGMA cache_size: negative, in KiB (see the pragma in setup) */
#define CACHE_PAGE_CACHE_KIB "-256"

static const char *const stmt_sql[ST_N] = {
    [ST_GET] = SELECT_DOMAINS "domain = ?1",
    /*
     * last_used never moves back: a touch from another process may have won.
     * The rest only from a refresh that fetched no earlier than the stored
     * one: an older policy never overwrites a newer (a second statement
     * then raises last_used alone; see cache_put).
     */
    [ST_PUT] =
        "INSERT INTO domains (" DOMAIN_COLS ") VALUES"
        " (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"
        " ON CONFLICT(domain) DO UPDATE SET txt_id=excluded.txt_id,"
        " has_policy=excluded.has_policy, mode=excluded.mode, max_age=excluded.max_age,"
        " mx=excluded.mx, policy_text=excluded.policy_text,"
        " fetched_at=excluded.fetched_at, expires_at=excluded.expires_at,"
        " checked_at=excluded.checked_at, last_used=MAX(last_used, excluded.last_used),"
        " status=excluded.status, dnssec=excluded.dnssec, last_error=excluded.last_error,"
        " fetch_failed_id=excluded.fetch_failed_id, fetch_failed_at=excluded.fetch_failed_at,"
        " source=excluded.source"
        " WHERE excluded.fetched_at >= domains.fetched_at",
    [ST_TOUCH] = "UPDATE domains SET last_used = MAX(last_used, ?2) WHERE domain = ?1",
    [ST_DELETE] = "DELETE FROM domains WHERE domain = ?1",
    /* typeof() keeps the keyset cursor strictly increasing whatever a hand-made row holds. */
    [ST_LIST] = SELECT_DOMAINS "typeof(domain) = 'text' AND domain > ?1 ORDER BY domain LIMIT ?2",
    /* Only rows with a policy: a negative answer lives out its own TTL (issue 12). */
    [ST_DUE] = SELECT_DOMAINS "typeof(domain) = 'text' AND domain > ?1 AND has_policy = 1"
                              " AND last_used >= ?3"
                              " AND (checked_at + ?4 <= ?5 OR expires_at - ?6 <= ?5)"
                              " ORDER BY domain LIMIT ?2",
    [ST_PURGE] = "DELETE FROM domains WHERE last_used < ?1",
    [ST_PUT_PROBE] =
        "INSERT OR REPLACE INTO mx_probes (" PROBE_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7)",
    [ST_GET_PROBE] = "SELECT " PROBE_COLS " FROM mx_probes WHERE host = ?1",
    [ST_GET_MX] = "SELECT " CACHE_ROW_MX_COLUMNS " FROM mx_sets WHERE domain = ?1",
    [ST_PUT_MX] = "INSERT INTO mx_sets (" CACHE_ROW_MX_COLUMNS ") VALUES (?1,?2,?3,?4,?5)"
                  " ON CONFLICT(domain) DO UPDATE SET hosts=excluded.hosts,"
                  " fetched_at=excluded.fetched_at, expires_at=excluded.expires_at,"
                  " dnssec=excluded.dnssec WHERE excluded.fetched_at >= mx_sets.fetched_at",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_PUT_TLS_PROBE] = "INSERT OR REPLACE INTO tls_probes (" CACHE_TLS_PROBE_COLUMNS ") VALUES"
                         " (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)",
    [ST_GET_TLS_PROBES] = "SELECT " CACHE_TLS_PROBE_COLUMNS " FROM tls_probes"
                          " WHERE host = ?1 AND port = ?2 ORDER BY address LIMIT ?3",
    [ST_PURGE_TLS_PROBES] = "DELETE FROM tls_probes WHERE expires_at < ?1",
    [ST_TLS_PROBED_SINCE] = "SELECT host, MAX(probed_at) FROM tls_probes WHERE probed_at >= ?1"
                            " AND typeof(host) = 'text' GROUP BY host LIMIT ?2",
    [ST_LIST_TLS_PROBES] = "SELECT " CACHE_TLS_PROBE_COLUMNS " FROM tls_probes"
                           " ORDER BY host, port, address LIMIT ?1",
    [ST_DELETE_TLS_PROBES] = "DELETE FROM tls_probes WHERE host = ?1",
    [ST_FLUSH_TLS_PROBES] = "DELETE FROM tls_probes",
};



static void heal_locked(struct cache *c, bool rmu_held);

/* With mu held: heals a stand-in when its retry is due, and a file a read on
 * rdb found corrupt while mu was busy (cache_unlock_row), unless healed since. */
static void
heal_if_due(struct cache *c)
{
    if (atomic_exchange(&c->heal_due, 0) == c->heals + 1)
        c->corrupt_seen = c->heal;
    if (c->corrupt_seen || (c->heal && c->stand_in && time(NULL) >= c->retry_at))
        heal_locked(c, false);
}

void
cache_lock(struct cache *c)
{
    pthread_mutex_lock(&c->mu);
    heal_if_due(c);
}

/* The calling thread's bound on waits for reads (cache_bound_waits); NULL: none. */
static _Thread_local const struct timespec *wait_bound;

const struct timespec *
cache_bound_waits(const struct timespec *deadline)
{
    const struct timespec *old = wait_bound;

    wait_bound = deadline;
    return old;
}

/*
 * For a read: the lock within the thread's bound, and SQLite's busy wait
 * cut to what is left of it. false (nothing held) when the bound passed.
 */
static int64_t
ms_left(void)
{
    struct timespec now;

    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(wait_bound->tv_sec - now.tv_sec) * 1000 +
           (wait_bound->tv_nsec - now.tv_nsec) / 1000000;
}

/* mu within the thread's bound (wait_bound set); false when it passed first. */
static bool
lock_within_bound(pthread_mutex_t *mu)
{
    struct timespec until;
    int64_t left;

    if (pthread_mutex_trylock(mu) == 0)
        return true;
    /* timedlock takes CLOCK_REALTIME: the bound's remainder from now. */
    if ((left = ms_left()) <= 0)
        return false;
    (void)clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(left / 1000);
    until.tv_nsec += (long)(left % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(mu, &until) == 0;
}

/* SQLite's busy wait on db cut to what is left of the thread's bound. */
static void
bound_busy_wait(struct cache *c, sqlite3 *db)
{
    int64_t left = ms_left();

    if (left < c->busy_ms)
        (void)sqlite3_busy_timeout(db, left > 0 ? (int)left : 0);
}

bool
cache_lock_read(struct cache *c)
{
    if (wait_bound == NULL) {
        cache_lock(c);
        return true;
    }
    if (!lock_within_bound(&c->mu))
        return false;
    heal_if_due(c);
    bound_busy_wait(c, c->db);
    return true;
}

/* After cache_lock_read: the connection's own busy timeout again. */
void
cache_unlock_read(struct cache *c)
{
    if (wait_bound != NULL)
        (void)sqlite3_busy_timeout(c->db, c->busy_ms);
    cache_unlock(c);
}

sqlite3 *
cache_lock_row(struct cache *c, int which, sqlite3_stmt **s)
{
    if (wait_bound == NULL)
        pthread_mutex_lock(&c->rmu);
    else if (!lock_within_bound(&c->rmu))
        return NULL;
    if (c->rdb != NULL) {
        if (wait_bound != NULL)
            bound_busy_wait(c, c->rdb);
        *s = c->rst[which];
        return c->rdb;
    }
    /* No readers' connection (in memory, read-only, a stand-in): db's. */
    pthread_mutex_unlock(&c->rmu);
    if (!cache_lock_read(c))
        return NULL;
    *s = c->st[which]; /* after the lock: a heal replaces them */
    return c->db;
}

void
cache_unlock_row(struct cache *c, sqlite3 *db, bool corrupt)
{
    if (db == c->db) { /* read on db, under mu (see cache_lock_row) */
        if (corrupt)
            c->corrupt_seen = c->heal;
        cache_unlock_read(c);
        return;
    }
    if (wait_bound != NULL)
        (void)sqlite3_busy_timeout(db, c->busy_ms);
    /*
     * Healing needs mu, which a writer may hold through SQLite's busy wait:
     * never wait for it here. When it is busy, the next holder heals, and
     * until then reads keep finding the file corrupt (CACHE_CORRUPT).
     */
    if (corrupt && c->heal) {
        if (pthread_mutex_trylock(&c->mu) == 0) {
            heal_locked(c, true);
            pthread_mutex_unlock(&c->mu);
        } else {
            atomic_store(&c->heal_due, c->heals + 1);
        }
    }
    pthread_mutex_unlock(&c->rmu);
}

/* Heals (see cache.h) before letting go when a statement found the file corrupt. */
void
cache_unlock(struct cache *c)
{
    if (c->corrupt_seen)
        heal_locked(c, false);
    pthread_mutex_unlock(&c->mu);
}

/* Maps an SQLite result to our status and a sentence naming the file. */
enum cache_status
cache_fail(struct cache *c, int rc, const char *what, struct mts_err *err)
{
    enum cache_status st = cache_fail_on(c, c->db, rc, what, err);

    if (st == CACHE_CORRUPT)
        c->corrupt_seen = c->heal;
    return st;
}

enum cache_status
cache_fail_on(struct cache *c, sqlite3 *db, int rc, const char *what, struct mts_err *err)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        mts_err_set(err, "%s: database is locked (busy timeout %d ms exceeded): %s", what,
                    c->busy_ms, c->path);
        return CACHE_BUSY;
    case SQLITE_READONLY:
        mts_err_set(err, "%s: database is read-only: %s (%s)", what, c->path, sqlite3_errstr(rc));
        return CACHE_READONLY;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        mts_err_set(err, "%s: database file is corrupt or not an SQLite database: %s", what,
                    c->path);
        return CACHE_CORRUPT;
    default:
        /* errmsg has the detail, but only when it is about this rc. */
        mts_err_set(err, "%s: %s: %s", what, c->path,
                    db != NULL && (sqlite3_errcode(db) & 0xff) == (rc & 0xff)
                        ? sqlite3_errmsg(db)
                        : sqlite3_errstr(rc));
        return CACHE_ERROR;
    }
}

int
cache_exec(struct cache *c, const char *sql)
{
    return sqlite3_exec(c->db, sql, NULL, NULL, NULL);
}

/* Runs a pragma that returns one row: its value into *num or text. */
static enum cache_status
pragma(struct cache *c, const char *sql, int64_t *num, char *text, size_t textsz,
       struct mts_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
    enum cache_status st = CACHE_OK;

    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        st = cache_fail(c, rc, "cannot open", err);
    else if (num != NULL)
        *num = sqlite3_column_int64(s, 0);
    else if (sqlite3_column_text(s, 0) != NULL)
        (void)snprintf(text, textsz, "%s", (const char *)sqlite3_column_text(s, 0));
    (void)sqlite3_finalize(s); /* repeats the error above, if any */
    return st;
}

/* Also refuses older schemas for read-only opens, which cannot migrate. */
static enum cache_status
version_check(struct cache *c, int64_t v, bool ro, struct mts_err *err)
{
    if (v > CACHE_SCHEMA_VERSION) {
        mts_err_set(err,
                    "database schema version %lld is newer than this program supports (%d): %s; "
                    "upgrade the program or use another file",
                    (long long)v, CACHE_SCHEMA_VERSION, c->path);
        return CACHE_ERROR;
    }
    if (ro && v < CACHE_SCHEMA_VERSION) {
        mts_err_set(err,
                    "database schema version %lld is older than %d: %s; open it read-write "
                    "once to create or migrate it",
                    (long long)v, CACHE_SCHEMA_VERSION, c->path);
        return CACHE_ERROR;
    }
    return CACHE_OK;
}

static enum cache_status
migrate(struct cache *c, struct mts_err *err)
{
    enum cache_status st;
    int64_t v;
    int rc;
    char sql[64];

    if ((st = pragma(c, "PRAGMA user_version", &v, NULL, 0, err)) != CACHE_OK ||
        v == CACHE_SCHEMA_VERSION || (st = version_check(c, v, false, err)) != CACHE_OK)
        return st;
    /* Another process may be migrating the same file: lock first, then look again. */
    if ((rc = cache_exec(c, "BEGIN IMMEDIATE")) != SQLITE_OK)
        return cache_fail(c, rc, "cannot migrate schema", err);
    if ((st = pragma(c, "PRAGMA user_version", &v, NULL, 0, err)) == CACHE_OK)
        st = version_check(c, v, false, err);
    for (int64_t i = v < 0 ? 0 : v; st == CACHE_OK && i < CACHE_SCHEMA_VERSION; i++)
        if ((rc = cache_exec(c, migrations[i])) != SQLITE_OK)
            st = cache_fail(c, rc, "cannot migrate schema", err);
    if (st == CACHE_OK) {
        (void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", CACHE_SCHEMA_VERSION);
        if ((rc = cache_exec(c, sql)) == SQLITE_OK)
            rc = cache_exec(c, "COMMIT");
        if (rc != SQLITE_OK)
            st = cache_fail(c, rc, "cannot migrate schema", err);
    }
    if (st != CACHE_OK)
        (void)cache_exec(c, "ROLLBACK"); /* fails harmlessly if SQLite already rolled back */
    return st;
}

/* SQLite would create the file 0644; the cache reveals who mails whom, so 0640. */
static enum cache_status
precreate(const char *path, struct mts_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);

    if (fd >= 0) {
        (void)close(fd);
        return CACHE_OK;
    }
    if (errno == EEXIST)
        return CACHE_OK;
    mts_err_set(err, "cannot create database %s: %s", path, strerror(errno));
    return (errno == EACCES || errno == EPERM || errno == EROFS) ? CACHE_READONLY : CACHE_ERROR;
}

static enum cache_status
setup(struct cache *c, bool ro, bool mem, struct mts_err *err)
{
    enum cache_status st;
    char jm[16] = "";
    int64_t v;
    int rc;

    if ((rc = sqlite3_busy_timeout(c->db, c->busy_ms)) != SQLITE_OK)
        return cache_fail(c, rc, "cannot set busy timeout", err);
    /* A small page cache: the rows in use are held in memory (cachecopy.h),
     * and the file's pages stay in the kernel's page cache anyway. SQLite's
     * default (2 MB a connection) was ~2 MB of the milter's RSS with
     * 100,000 domains (make bench); a failure leaves the default. */
    (void)cache_exec(c, "PRAGMA cache_size=" CACHE_PAGE_CACHE_KIB);
    if (!ro && sqlite3_db_readonly(c->db, "main") == 1) {
        mts_err_set(err, "cannot open: database is read-only (no write permission): %s", c->path);
        return CACHE_READONLY;
    }
    if (ro) {
        if ((st = pragma(c, "PRAGMA user_version", &v, NULL, 0, err)) != CACHE_OK ||
            (st = version_check(c, v, true, err)) != CACHE_OK)
            return st;
    } else {
        /*
         * Processes that open a new file together can deadlock upgrading
         * their rollback-mode locks; SQLite then fails one at once without
         * calling the busy handler. Retry for about the busy timeout.
         */
        for (int waited = 0;
             (st = pragma(c, "PRAGMA journal_mode=WAL", NULL, jm, sizeof(jm), err)) == CACHE_BUSY &&
             waited < c->busy_ms;
             waited += 10)
            (void)sqlite3_sleep(10); /* returns the time slept, nothing to check */
        if (st != CACHE_OK)
            return st;
        /* WAL is what lets milter threads read while the tool or a refresher writes. */
        if (!mem && strcmp(jm, "wal") != 0) {
            mts_err_set(err, "cannot switch %s to WAL mode (journal_mode is %s)", c->path, jm);
            return CACHE_ERROR;
        }
        /* NORMAL in WAL mode: a power cut may lose the last commits, never consistency. */
        if ((rc = cache_exec(c, "PRAGMA synchronous=NORMAL")) != SQLITE_OK)
            return cache_fail(c, rc, "cannot open", err);
        /* The schema has no foreign keys, so PRAGMA foreign_keys is not needed. */
        if ((st = migrate(c, err)) != CACHE_OK)
            return st;
    }
    for (int i = 0; i < ST_N; i++)
        if ((rc = sqlite3_prepare_v3(c->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i],
                                     NULL)) != SQLITE_OK)
            return cache_fail(c, rc, "cannot prepare statements", err);
    return CACHE_OK;
}

/* The readers' connection (see struct cache) and its statements. */
static enum cache_status
open_reader(struct cache *c, struct mts_err *err)
{
    static const int reads[] = {ST_GET, ST_GET_PROBE, ST_GET_MX};
    int persist = 1;
    int rc = sqlite3_open_v2(c->path, &c->rdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(c->rdb, c->busy_ms);
    if (rc == SQLITE_OK)
        (void)sqlite3_exec(c->rdb, "PRAGMA cache_size=" CACHE_PAGE_CACHE_KIB, NULL, NULL, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < NELEM(reads); i++)
        rc = sqlite3_prepare_v3(c->rdb, stmt_sql[reads[i]], -1, SQLITE_PREPARE_PERSISTENT,
                                &c->rst[reads[i]], NULL);
    if (rc != SQLITE_OK)
        return cache_fail_on(c, c->rdb, rc, "cannot open", err);
    /* As db's (open_common): closing it must not delete a healed file's WAL. */
    (void)sqlite3_file_control(c->rdb, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    return CACHE_OK;
}

static enum cache_status
open_common(const char *path, int busy_ms, bool ro, struct cache **out, struct mts_err *err)
{
    struct cache *c;
    enum cache_status st;
    bool mem;
    int rc;

    mts_err_clear(err);
    *out = NULL;
    if (path == NULL || path[0] == '\0' || busy_ms < 0) {
        mts_err_set(err, "cache_open: empty path or negative busy timeout");
        return CACHE_ERROR;
    }
    mem = strcmp(path, ":memory:") == 0;
    if (!ro && !mem && (st = precreate(path, err)) != CACHE_OK)
        return st;
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->path = strdup(path)) == NULL ||
        pthread_mutex_init(&c->mu, NULL) != 0) {
        if (c != NULL)
            free(c->path);
        free(c);
        mts_err_set(err, "cannot open %s: out of memory", path);
        return CACHE_ERROR;
    }
    if (pthread_mutex_init(&c->rmu, NULL) != 0) {
        (void)pthread_mutex_destroy(&c->mu);
        free(c->path);
        free(c);
        mts_err_set(err, "cannot open %s: out of memory", path);
        return CACHE_ERROR;
    }
    c->busy_ms = busy_ms;
    /* NOMUTEX: our own mutex already serialises every call on the connection. */
    rc = sqlite3_open_v2(path, &c->db,
                         (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                             SQLITE_OPEN_NOMUTEX,
                         NULL);
    st = rc == SQLITE_OK ? setup(c, ro, mem, err) : cache_fail(c, rc, "cannot open", err);
    if (st == CACHE_OK && !mem) {
        struct stat sb;
        int persist = 1;

        if (stat(path, &sb) == 0) {
            c->dev = sb.st_dev;
            c->ino = sb.st_ino;
        }
        /*
         * The last connection to close deletes PATH-wal by name; after a
         * heal that name is the fresh file's. Keep the WAL file instead
         * (closing then only truncates it, through its descriptor).
         */
        (void)sqlite3_file_control(c->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
        /* Only where writes can hold db: a read-only open never writes. */
        if (!ro)
            st = open_reader(c, err);
    }
    if (st != CACHE_OK) {
        cache_close(c);
        return st;
    }
    *out = c;
    return CACHE_OK;
}

/* PATH -> PATH.corrupt-TIME[-N], with its -wal and -shm; the new name into moved. */
static int
move_aside(const char *path, char *moved, size_t movedsz, struct mts_err *err)
{
    static const char *const side[] = {"-wal", "-shm"};
    char from[4096], to[4096];
    long long t = (long long)time(NULL); /* a name, not a cache time */
    struct stat sb;

    for (int n = 0;; n++) {
        int k = n == 0 ? snprintf(moved, movedsz, "%s.corrupt-%lld", path, t)
                       : snprintf(moved, movedsz, "%s.corrupt-%lld-%d", path, t, n);

        if (k < 0 || (size_t)k >= movedsz) {
            mts_err_set(err, "cannot move %s aside: name too long", path);
            return -1;
        }
        if (lstat(moved, &sb) != 0 || n > 100)
            break;
    }
    if (rename(path, moved) != 0) {
        mts_err_set(err, "cannot move %s aside to %s: %s", path, moved, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < NELEM(side); i++)
        if (snprintf(from, sizeof(from), "%s%s", path, side[i]) < (int)sizeof(from) &&
            snprintf(to, sizeof(to), "%s%s", moved, side[i]) < (int)sizeof(to))
            (void)rename(from, to); /* absent: nothing to move */
    return 0;
}

/* Is the file at path still the one c opened? */
static bool
same_file(const struct cache *c)
{
    struct stat sb;

    return stat(c->path, &sb) == 0 && sb.st_dev == c->dev && sb.st_ino == c->ino;
}

/* Swaps two connections and their statements. */
static void
swap_db(sqlite3 **a, sqlite3_stmt **as, sqlite3 **b, sqlite3_stmt **bs)
{
    sqlite3 *db = *a;
    sqlite3_stmt *st[ST_N];

    memcpy(st, as, sizeof(st));
    *a = *b;
    memcpy(as, bs, sizeof(st));
    *b = db;
    memcpy(bs, st, sizeof(st));
}

/*
 * Takes over n's connections and statements (n is then closed, owning c's
 * old ones). With mu and rmu held.
 */
static void
swap_connection(struct cache *c, struct cache *n)
{
    swap_db(&c->db, c->st, &n->db, n->st);
    swap_db(&c->rdb, c->rst, &n->rdb, n->rst);
    c->dev = n->dev;
    c->ino = n->ino;
    cache_close(n);
}

/*
 * With mu held (and rmu, if rmu_held): the file was found corrupt (or
 * could not be reopened before). Closes the connections, moves the file
 * aside unless another process already did, and opens a fresh one; when
 * that fails, an in-memory stand-in serves (every row "not found") and the
 * file is tried again a second later.
 */
static void heal_both_locked(struct cache *c);

static void
heal_locked(struct cache *c, bool rmu_held)
{
    if (!rmu_held)
        pthread_mutex_lock(&c->rmu);
    heal_both_locked(c);
    if (!rmu_held)
        pthread_mutex_unlock(&c->rmu);
}

static void
heal_both_locked(struct cache *c)
{
    struct cache *n = NULL;
    struct mts_err err;
    char moved[4096];
    bool was_stand_in = c->stand_in;

    c->heals++;
    c->corrupt_seen = false;
    if (!was_stand_in) {
        /* Closed first: nothing of ours may touch the file once it is moved. */
        struct cache *old = NULL;
        bool ours = same_file(c);

        if (open_common(":memory:", c->busy_ms, false, &old, &err) != CACHE_OK) {
            log_msg(LOG_ERR, "cache %s is corrupt, and no stand-in: %s", c->path, err.msg);
            return;
        }
        swap_connection(c, old);
        c->stand_in = true;
        if (ours) {
            if (move_aside(c->path, moved, sizeof(moved), &err) == 0) {
                metrics_cache_healed();
                log_msg(LOG_WARNING, "cache %s is corrupt: moved aside to %s; a fresh one "
                        "is created", c->path, moved);
            } else
                log_msg(LOG_ERR, "cache %s is corrupt: %s", c->path, err.msg);
        } else {
            log_msg(LOG_WARNING, "cache %s was found corrupt and has already been replaced; "
                    "reopening it", c->path);
        }
    }
    if (open_common(c->path, c->busy_ms, false, &n, &err) != CACHE_OK) {
        c->retry_at = time(NULL) + 1;
        if (!was_stand_in)
            log_msg(LOG_ERR, "cannot reopen the cache (serving from memory until it can be): "
                    "%s", err.msg);
        return;
    }
    swap_connection(c, n);
    c->stand_in = false;
    log_msg(LOG_NOTICE, "cache %s reopened", c->path);
}

enum cache_status
cache_open_healing(const char *path, int busy_timeout_ms, struct cache **out, char *moved,
                   size_t movedsz, struct mts_err *err)
{
    enum cache_status st;
    struct mts_err why;

    moved[0] = '\0';
    st = cache_check_file(path, busy_timeout_ms, &why);
    if (st == CACHE_CORRUPT && move_aside(path, moved, movedsz, err) != 0)
        return CACHE_CORRUPT;
    if (st == CACHE_CORRUPT)
        metrics_cache_healed();
    if ((st = open_common(path, busy_timeout_ms, false, out, err)) == CACHE_OK)
        (*out)->heal = true;
    return st;
}

enum cache_status
cache_check_file(const char *path, int busy_timeout_ms, struct mts_err *err)
{
    struct cache c;
    sqlite3_stmt *s = NULL;
    enum cache_status st = CACHE_OK;
    struct stat sb;
    int rc;

    mts_err_clear(err);
    if (strcmp(path, ":memory:") == 0 || (stat(path, &sb) != 0 && errno == ENOENT))
        return CACHE_OK; /* created at open */
    memset(&c, 0, sizeof(c));
    c.path = (char *)path;
    c.busy_ms = busy_timeout_ms;
    rc = sqlite3_open_v2(path, &c.db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(c.db, busy_timeout_ms);
    /* quick_check reads every page: a truncated file shows here, not at open. */
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c.db, "PRAGMA quick_check(1)", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *r = sqlite3_column_text(s, 0);

        rc = SQLITE_OK;
        if (r == NULL || strcmp((const char *)r, "ok") != 0) {
            mts_err_set(err, "database file is corrupt (%s): %s", r ? (const char *)r : "?", path);
            st = CACHE_CORRUPT;
        }
    }
    if (rc != SQLITE_OK && st == CACHE_OK)
        st = cache_fail(&c, rc, "cannot check", err);
    (void)sqlite3_finalize(s);
    s = NULL;
    /* A newer schema: the open would refuse it, so say so now. */
    if (st == CACHE_OK) {
        int64_t v = 0;

        if ((st = pragma(&c, "PRAGMA user_version", &v, NULL, 0, err)) == CACHE_OK)
            st = version_check(&c, v, false, err);
    }
    (void)sqlite3_close_v2(c.db);
    return st;
}

enum cache_status
cache_open(const char *path, int busy_timeout_ms, struct cache **out, struct mts_err *err)
{
    return open_common(path, busy_timeout_ms, false, out, err);
}

enum cache_status
cache_open_readonly(const char *path, int busy_timeout_ms, struct cache **out, struct mts_err *err)
{
    return open_common(path, busy_timeout_ms, true, out, err);
}

void
cache_close(struct cache *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < ST_N; i++) {
        (void)sqlite3_finalize(c->st[i]); /* only repeats the last step's error */
        (void)sqlite3_finalize(c->rst[i]);
    }
    /* close_v2 cannot be refused: every statement is finalised above. */
    (void)sqlite3_close_v2(c->db);
    (void)sqlite3_close_v2(c->rdb);
    (void)pthread_mutex_destroy(&c->mu);
    (void)pthread_mutex_destroy(&c->rmu);
    free(c->path);
    free(c);
}

