/*
 * cache - the shared SQLite database; see cache.h for the interface.
 *
 * DESCRIPTION
 *	One connection and one mutex per struct cache. Statements are prepared
 *	once at open and reset after every use. Rows travel as arrays of
 *	column values (struct cache_val): cache_row.c encodes, decodes and
 *	checks them, this file binds and reads them. The only module that
 *	includes sqlite3.h.
 */
#include "cache.h"
#include "cache_row.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define ITER_BATCH 32 /* rows read under the lock before callbacks run */
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

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
};

_Static_assert(NELEM(migrations) == CACHE_SCHEMA_VERSION, "one migration step per version");

/* The columns in the order of cache_row's values. */
#define DOMAIN_COLS CACHE_ROW_DOMAIN_COLUMNS
#define PROBE_COLS CACHE_ROW_PROBE_COLUMNS
#define SELECT_DOMAINS "SELECT " DOMAIN_COLS " FROM domains WHERE "

/* The prepared statements, by use. */
enum {
    ST_GET,
    ST_PUT,
    ST_TOUCH,
    ST_DELETE,
    ST_LIST,
    ST_DUE,
    ST_PURGE,
    ST_PUT_PROBE,
    ST_GET_PROBE,
    ST_GET_MX,
    ST_PUT_MX,
    ST_DATA_VERSION,
    ST_PUT_TLS_PROBE,
    ST_GET_TLS_PROBES,
    ST_PURGE_TLS_PROBES,
    ST_TLS_PROBED_SINCE,
    ST_N
};

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
        " (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)"
        " ON CONFLICT(domain) DO UPDATE SET txt_id=excluded.txt_id,"
        " has_policy=excluded.has_policy, mode=excluded.mode, max_age=excluded.max_age,"
        " mx=excluded.mx, policy_text=excluded.policy_text,"
        " fetched_at=excluded.fetched_at, expires_at=excluded.expires_at,"
        " checked_at=excluded.checked_at, last_used=MAX(last_used, excluded.last_used),"
        " status=excluded.status, dnssec=excluded.dnssec, last_error=excluded.last_error,"
        " fetch_failed_id=excluded.fetch_failed_id, fetch_failed_at=excluded.fetch_failed_at"
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
                         " (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
    [ST_GET_TLS_PROBES] = "SELECT " CACHE_TLS_PROBE_COLUMNS " FROM tls_probes"
                          " WHERE host = ?1 AND port = ?2 ORDER BY address LIMIT ?3",
    [ST_PURGE_TLS_PROBES] = "DELETE FROM tls_probes WHERE expires_at < ?1",
    [ST_TLS_PROBED_SINCE] = "SELECT host, MAX(probed_at) FROM tls_probes WHERE probed_at >= ?1"
                            " AND typeof(host) = 'text' GROUP BY host LIMIT ?2",
};

struct cache {
    sqlite3 *db;
    pthread_mutex_t mu; /* serialises every use of db, sqlite3_errmsg included */
    sqlite3_stmt *st[ST_N];
    int busy_ms;
    char *path;
    /* Healing (cache_open_healing): set aside a corrupt file and reopen. */
    bool heal;
    bool corrupt_seen;  /* a statement found the file corrupt: heal at unlock */
    bool stand_in;      /* the file could not be reopened: an in-memory database */
    time_t retry_at;    /* with stand_in: when to try the file again */
    dev_t dev;          /* the file this connection opened */
    ino_t ino;
};

static void heal_locked(struct cache *c);
static void cache_unlock(struct cache *c);

static void
cache_lock(struct cache *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->heal && c->stand_in && time(NULL) >= c->retry_at)
        heal_locked(c);
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

static bool
cache_lock_read(struct cache *c)
{
    struct timespec until;
    int64_t left;

    if (wait_bound == NULL) {
        cache_lock(c);
        return true;
    }
    if (pthread_mutex_trylock(&c->mu) != 0) {
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
        if (pthread_mutex_timedlock(&c->mu, &until) != 0)
            return false;
    }
    if (c->heal && c->stand_in && time(NULL) >= c->retry_at)
        heal_locked(c);
    left = ms_left();
    if (left < c->busy_ms)
        (void)sqlite3_busy_timeout(c->db, left > 0 ? (int)left : 0);
    return true;
}

/* After cache_lock_read: the connection's own busy timeout again. */
static void
cache_unlock_read(struct cache *c)
{
    if (wait_bound != NULL)
        (void)sqlite3_busy_timeout(c->db, c->busy_ms);
    cache_unlock(c);
}

/* Heals (see cache.h) before letting go when a statement found the file corrupt. */
static void
cache_unlock(struct cache *c)
{
    if (c->corrupt_seen)
        heal_locked(c);
    pthread_mutex_unlock(&c->mu);
}

/* Maps an SQLite result to our status and a sentence naming the file. */
static enum cache_status
fail(struct cache *c, int rc, const char *what, struct mts_err *err)
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
        c->corrupt_seen = c->heal;
        mts_err_set(err, "%s: database file is corrupt or not an SQLite database: %s", what,
                    c->path);
        return CACHE_CORRUPT;
    default:
        /* errmsg has the detail, but only when it is about this rc. */
        mts_err_set(err, "%s: %s: %s", what, c->path,
                    c->db != NULL && (sqlite3_errcode(c->db) & 0xff) == (rc & 0xff)
                        ? sqlite3_errmsg(c->db)
                        : sqlite3_errstr(rc));
        return CACHE_ERROR;
    }
}

/* reset() repeats the step's error, which the caller has already reported. */
static void
stmt_done(sqlite3_stmt *s)
{
    (void)sqlite3_reset(s);
    (void)sqlite3_clear_bindings(s);
}

/* Binds v[0..n-1] to ?1..?n. The texts must outlive the step. */
static int
bind_vals(sqlite3_stmt *s, const struct cache_val *v, size_t n)
{
    int rc = SQLITE_OK;

    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        int idx = (int)i + 1;
        if (v[i].type == CACHE_VAL_INT)
            rc = sqlite3_bind_int64(s, idx, v[i].i);
        else if (v[i].type == CACHE_VAL_TEXT)
            rc = sqlite3_bind_text(s, idx, v[i].text, (int)v[i].len, SQLITE_STATIC);
        else
            rc = sqlite3_bind_null(s, idx);
    }
    return rc;
}

/* The current row's columns as values, valid until the statement steps or resets. */
static void
read_vals(sqlite3_stmt *s, struct cache_val *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int t = sqlite3_column_type(s, (int)i);

        memset(&v[i], 0, sizeof(v[i]));
        if (t == SQLITE_NULL) {
            v[i].type = CACHE_VAL_NULL;
        } else if (t == SQLITE_INTEGER) {
            v[i].type = CACHE_VAL_INT;
            v[i].i = sqlite3_column_int64(s, (int)i);
        } else if (t == SQLITE_TEXT) {
            v[i].type = CACHE_VAL_TEXT;
            v[i].text = (const char *)sqlite3_column_text(s, (int)i);
            v[i].len = (size_t)sqlite3_column_bytes(s, (int)i);
        } else {
            v[i].type = CACHE_VAL_OTHER;
        }
    }
}

/* One domain row into *e. On false, *e is zeroed and owns nothing. */
static bool
row_to_entry(sqlite3_stmt *s, struct cache_entry *e, struct mts_err *err)
{
    struct cache_val v[CACHE_ROW_DOMAIN_NCOLS];

    read_vals(s, v, CACHE_ROW_DOMAIN_NCOLS);
    return cache_row_decode(v, e, err);
}

static int
exec(struct cache *c, const char *sql)
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
        st = fail(c, rc, "cannot open", err);
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
    if ((rc = exec(c, "BEGIN IMMEDIATE")) != SQLITE_OK)
        return fail(c, rc, "cannot migrate schema", err);
    if ((st = pragma(c, "PRAGMA user_version", &v, NULL, 0, err)) == CACHE_OK)
        st = version_check(c, v, false, err);
    for (int64_t i = v < 0 ? 0 : v; st == CACHE_OK && i < CACHE_SCHEMA_VERSION; i++)
        if ((rc = exec(c, migrations[i])) != SQLITE_OK)
            st = fail(c, rc, "cannot migrate schema", err);
    if (st == CACHE_OK) {
        (void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", CACHE_SCHEMA_VERSION);
        if ((rc = exec(c, sql)) == SQLITE_OK)
            rc = exec(c, "COMMIT");
        if (rc != SQLITE_OK)
            st = fail(c, rc, "cannot migrate schema", err);
    }
    if (st != CACHE_OK)
        (void)exec(c, "ROLLBACK"); /* fails harmlessly if SQLite already rolled back */
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
        return fail(c, rc, "cannot set busy timeout", err);
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
        if ((rc = exec(c, "PRAGMA synchronous=NORMAL")) != SQLITE_OK)
            return fail(c, rc, "cannot open", err);
        /* The schema has no foreign keys, so PRAGMA foreign_keys is not needed. */
        if ((st = migrate(c, err)) != CACHE_OK)
            return st;
    }
    for (int i = 0; i < ST_N; i++)
        if ((rc = sqlite3_prepare_v3(c->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i],
                                     NULL)) != SQLITE_OK)
            return fail(c, rc, "cannot prepare statements", err);
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
    c->busy_ms = busy_ms;
    /* NOMUTEX: our own mutex already serialises every call on the connection. */
    rc = sqlite3_open_v2(path, &c->db,
                         (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                             SQLITE_OPEN_NOMUTEX,
                         NULL);
    st = rc == SQLITE_OK ? setup(c, ro, mem, err) : fail(c, rc, "cannot open", err);
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

/* Takes over n's connection and statements (n is then closed, owning c's old ones). */
static void
swap_connection(struct cache *c, struct cache *n)
{
    sqlite3 *db = c->db;
    sqlite3_stmt *st[ST_N];

    memcpy(st, c->st, sizeof(st));
    c->db = n->db;
    memcpy(c->st, n->st, sizeof(c->st));
    c->dev = n->dev;
    c->ino = n->ino;
    n->db = db;
    memcpy(n->st, st, sizeof(st));
    cache_close(n);
}

/*
 * With the lock held: the file was found corrupt (or could not be
 * reopened before). Closes this connection, moves the file aside unless
 * another process already did, and opens a fresh one; when that fails, an
 * in-memory stand-in serves (every row "not found") and the file is tried
 * again a second later.
 */
static void
heal_locked(struct cache *c)
{
    struct cache *n = NULL;
    struct mts_err err;
    char moved[4096];
    bool was_stand_in = c->stand_in;

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
            if (move_aside(c->path, moved, sizeof(moved), &err) == 0)
                log_msg(LOG_WARNING, "cache %s is corrupt: moved aside to %s; a fresh one "
                        "is created", c->path, moved);
            else
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
        st = fail(&c, rc, "cannot check", err);
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
    for (int i = 0; i < ST_N; i++)
        (void)sqlite3_finalize(c->st[i]); /* only repeats the last step's error */
    /* close_v2 cannot be refused: every statement is finalised above. */
    (void)sqlite3_close_v2(c->db);
    (void)pthread_mutex_destroy(&c->mu);
    free(c->path);
    free(c);
}

const char *
cache_status_name(enum cache_status st)
{
    static const struct nametab names[] = {
        {"ok", CACHE_OK},           {"not found", CACHE_NOT_FOUND}, {"busy", CACHE_BUSY},
        {"read-only", CACHE_READONLY}, {"corrupt", CACHE_CORRUPT},   {"bad row", CACHE_BAD_ROW},
        {"error", CACHE_ERROR},     {"stale", CACHE_STALE},         {NULL, -1},
    };

    return nametab_name(names, (int)st);
}

/* Steps a bound statement that returns no rows, under the caller's lock. */
static enum cache_status
run(struct cache *c, sqlite3_stmt *s, int rc, const char *what, struct mts_err *err)
{
    enum cache_status st = CACHE_OK;

    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        st = fail(c, rc, what, err);
    stmt_done(s);
    return st;
}

/* Looks key up with statement which and reads the row into obj (zeroed first). */
static enum cache_status
get_row(struct cache *c, int which, const char *key, void *obj, size_t objsz, struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st;
    int rc;

    memset(obj, 0, objsz);
    if (!cache_row_name_ok(which == ST_GET_PROBE ? "MX host" : "domain", key, err))
        return CACHE_ERROR;
    if (!cache_lock_read(c)) {
        mts_err_set(err, "%s: the cache is in use past the deadline: %s", key, c->path);
        return CACHE_BUSY;
    }
    s = c->st[which]; /* after the lock: a heal replaces them */
    rc = sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        mts_err_set(err, "%s: not in cache", key);
        st = CACHE_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        st = fail(c, rc, "cannot read cache row", err);
    } else if (which == ST_GET) {
        st = row_to_entry(s, obj, err) ? CACHE_OK : CACHE_BAD_ROW;
    } else if (which == ST_GET_MX) {
        struct cache_val v[CACHE_ROW_MX_NCOLS];

        read_vals(s, v, CACHE_ROW_MX_NCOLS);
        st = cache_mxset_decode(v, obj, err) ? CACHE_OK : CACHE_BAD_ROW;
    } else {
        struct cache_val v[CACHE_ROW_PROBE_NCOLS];

        read_vals(s, v, CACHE_ROW_PROBE_NCOLS);
        st = cache_probe_decode(v, obj, err) ? CACHE_OK : CACHE_BAD_ROW;
    }
    stmt_done(s);
    cache_unlock_read(c);
    return st;
}

enum cache_status
cache_get(struct cache *c, const char *domain, struct cache_entry *out, struct mts_err *err)
{
    return get_row(c, ST_GET, domain, out, sizeof(*out), err);
}

enum cache_status
cache_get_probe(struct cache *c, const char *host, struct cache_probe *out, struct mts_err *err)
{
    return get_row(c, ST_GET_PROBE, host, out, sizeof(*out), err);
}

enum cache_status
cache_get_mx(struct cache *c, const char *domain, struct cache_mxset *out, struct mts_err *err)
{
    return get_row(c, ST_GET_MX, domain, out, sizeof(*out), err);
}

enum cache_status
cache_put_mx(struct cache *c, const struct cache_mxset *m, struct mts_err *err)
{
    sqlite3_stmt *s;
    struct cache_val v[CACHE_ROW_MX_NCOLS];
    enum cache_status st;
    char *joined;

    if (cache_mxset_encode(m, v, &joined, err) != 0)
        return CACHE_ERROR;
    cache_lock(c);
    s = c->st[ST_PUT_MX]; /* after the lock: a heal replaces them */
    st = run(c, s, bind_vals(s, v, CACHE_ROW_MX_NCOLS), "cannot store MX set", err);
    if (st == CACHE_OK && sqlite3_changes(c->db) == 0) {
        mts_err_set(err, "MX set of %s: a later one is stored; kept", m->domain);
        st = CACHE_STALE;
    }
    cache_unlock(c);
    free(joined);
    return st;
}

enum cache_status
cache_data_version(struct cache *c, int64_t *version, struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st = CACHE_OK;
    int rc;

    if (!cache_lock_read(c)) {
        mts_err_set(err, "cannot read the data version: the cache is in use past the deadline");
        return CACHE_BUSY;
    }
    s = c->st[ST_DATA_VERSION]; /* after the lock: a heal replaces them */
    if ((rc = sqlite3_step(s)) == SQLITE_ROW)
        *version = sqlite3_column_int64(s, 0);
    else
        st = fail(c, rc, "cannot read the data version", err);
    stmt_done(s);
    cache_unlock_read(c);
    return st;
}

enum cache_status
cache_touch_many(struct cache *c, const char *const *domains, const int64_t *at, size_t n,
                 struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st = CACHE_OK;
    int rc;

    cache_lock(c);
    s = c->st[ST_TOUCH]; /* after the lock: a heal replaces them */
    if ((rc = exec(c, "BEGIN IMMEDIATE")) != SQLITE_OK)
        st = fail(c, rc, "cannot update last use", err);
    for (size_t i = 0; st == CACHE_OK && i < n; i++) {
        if (!cache_row_name_ok("domain", domains[i], NULL))
            continue;
        rc = sqlite3_bind_text(s, 1, domains[i], -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(s, 2, at[i]);
        st = run(c, s, rc, "cannot update last use", err);
    }
    if (st == CACHE_OK && (rc = exec(c, "COMMIT")) != SQLITE_OK)
        st = fail(c, rc, "cannot update last use", err);
    if (st != CACHE_OK)
        (void)exec(c, "ROLLBACK"); /* fails harmlessly when nothing is open */
    cache_unlock(c);
    return st;
}

enum cache_status
cache_put(struct cache *c, const struct cache_entry *e, struct mts_err *err)
{
    struct cache_val v[CACHE_ROW_DOMAIN_NCOLS];
    enum cache_status st;
    char *joined;

    if (cache_row_encode(e, v, &joined, err) != 0)
        return CACHE_ERROR;
    cache_lock(c);
    st = run(c, c->st[ST_PUT], bind_vals(c->st[ST_PUT], v, CACHE_ROW_DOMAIN_NCOLS),
             "cannot store cache row", err);
    if (st == CACHE_OK && sqlite3_changes(c->db) == 0) {
        /* A later refresh won; the use still counts. */
        sqlite3_stmt *t = c->st[ST_TOUCH];
        int rc = sqlite3_bind_text(t, 1, e->domain, -1, SQLITE_STATIC);

        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(t, 2, e->last_used);
        st = run(c, t, rc, "cannot update last use", err);
        if (st == CACHE_OK) {
            mts_err_set(err, "%s: a policy fetched later is stored; kept", e->domain);
            st = CACHE_STALE;
        }
    }
    cache_unlock(c);
    free(joined);
    return st;
}

enum cache_status
cache_put_probe(struct cache *c, const struct cache_probe *p, struct mts_err *err)
{
    sqlite3_stmt *s;
    struct cache_val v[CACHE_ROW_PROBE_NCOLS];
    enum cache_status st;

    if (cache_probe_encode(p, v, err) != 0)
        return CACHE_ERROR;
    cache_lock(c);
    s = c->st[ST_PUT_PROBE]; /* after the lock: a heal replaces them */
    st = run(c, s, bind_vals(s, v, CACHE_ROW_PROBE_NCOLS), "cannot store probe row", err);
    cache_unlock(c);
    return st;
}

/* A one-key statement; NOT_FOUND when it changed no row. */
static enum cache_status
keyed_change(struct cache *c, int which, const char *domain, const int64_t *v, const char *what,
             struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st;
    int rc;

    if (!cache_row_name_ok("domain", domain, err))
        return CACHE_ERROR;
    cache_lock(c);
    s = c->st[which]; /* after the lock: a heal replaces them */
    rc = sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && v != NULL)
        rc = sqlite3_bind_int64(s, 2, *v);
    st = run(c, s, rc, what, err);
    if (st == CACHE_OK && sqlite3_changes(c->db) == 0) {
        mts_err_set(err, "%s: not in cache", domain);
        st = CACHE_NOT_FOUND;
    }
    cache_unlock(c);
    return st;
}

enum cache_status
cache_touch(struct cache *c, const char *domain, int64_t now, struct mts_err *err)
{
    return keyed_change(c, ST_TOUCH, domain, &now, "cannot update last use", err);
}

enum cache_status
cache_delete(struct cache *c, const char *domain, struct mts_err *err)
{
    return keyed_change(c, ST_DELETE, domain, NULL, "cannot delete cache row", err);
}

enum cache_status
cache_flush_all(struct cache *c, struct mts_err *err)
{
    enum cache_status st = CACHE_OK;
    int rc;

    cache_lock(c);
    /* One transaction, so no reader sees the domains gone but their probes still there. */
    rc = exec(c, "BEGIN IMMEDIATE; DELETE FROM mx_sets; DELETE FROM domains;"
                 " DELETE FROM mx_probes; DELETE FROM tls_probes; COMMIT");
    if (rc != SQLITE_OK) {
        st = fail(c, rc, "cannot flush cache", err);
        (void)exec(c, "ROLLBACK"); /* fails harmlessly when BEGIN did */
    }
    cache_unlock(c);
    return st;
}

enum cache_status
cache_purge_unused(struct cache *c, int64_t older_than, uint64_t *n_deleted, struct mts_err *err)
{
    sqlite3_stmt *s;
    enum cache_status st;

    cache_lock(c);
    s = c->st[ST_PURGE]; /* after the lock: a heal replaces them */
    st = run(c, s, sqlite3_bind_int64(s, 1, older_than), "cannot purge cache", err);
    if (n_deleted != NULL)
        *n_deleted = st == CACHE_OK ? (uint64_t)sqlite3_changes(c->db) : 0;
    cache_unlock(c);
    return st;
}

struct iter {
    char *cursor; /* raw key of the last row read: the next batch starts after it */
    size_t cursor_len, n, scanned, n_bad;
    struct mts_err first_bad;
    struct cache_entry batch[ITER_BATCH];
};

/* Reads one batch of at most lim rows into it->batch; the caller holds the lock. */
static enum cache_status
read_batch(struct cache *c, sqlite3_stmt *s, const int64_t *due, size_t lim, struct iter *it,
           struct mts_err *err)
{
    int rc = sqlite3_bind_text(s, 1, it->cursor != NULL ? it->cursor : "", (int)it->cursor_len,
                               SQLITE_TRANSIENT);
    char *p;

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)lim);
    for (int i = 0; due != NULL && i < 4 && rc == SQLITE_OK; i++)
        rc = sqlite3_bind_int64(s, 3 + i, due[i]);
    it->n = it->scanned = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        size_t klen = (size_t)sqlite3_column_bytes(s, 0);
        const void *k = sqlite3_column_text(s, 0);
        if (k == NULL || (p = realloc(it->cursor, klen + 1)) == NULL) {
            mts_err_set(err, "cannot list cache: out of memory");
            return CACHE_ERROR;
        }
        memcpy(p, k, klen);
        it->cursor = p;
        it->cursor_len = klen;
        it->scanned++;
        if (row_to_entry(s, &it->batch[it->n], it->n_bad == 0 ? &it->first_bad : NULL))
            it->n++;
        else
            it->n_bad++;
        rc = SQLITE_OK;
    }
    return rc == SQLITE_DONE ? CACHE_OK : fail(c, rc, "cannot list cache", err);
}

/*
 * Keyset pagination by domain: a batch is read under the lock, then the
 * callbacks run without it, so they may write to the cache, and no read
 * transaction stays open to hold back WAL checkpoints.
 */
static enum cache_status
iterate(struct cache *c, int which, const char *after, const int64_t *due, size_t max_rows,
        cache_row_fn fn, void *arg, struct mts_err *err)
{
    struct iter *it = calloc(1, sizeof(*it));
    enum cache_status st = CACHE_OK;
    int stop = 0;

    if (it == NULL || (after != NULL && (it->cursor = strdup(after)) == NULL)) {
        free(it);
        mts_err_set(err, "cannot list cache: out of memory");
        return CACHE_ERROR;
    }
    if (it->cursor != NULL)
        it->cursor_len = strlen(it->cursor);
    while (st == CACHE_OK && !stop && max_rows > 0) {
        size_t lim = max_rows < ITER_BATCH ? max_rows : ITER_BATCH;
        cache_lock(c);
        st = read_batch(c, c->st[which], due, lim, it, err);
        stmt_done(c->st[which]);
        cache_unlock(c);
        for (size_t i = 0; i < it->n; i++) {
            if (st == CACHE_OK && !stop)
                stop = fn(&it->batch[i], arg);
            cache_entry_free(&it->batch[i]);
        }
        max_rows -= it->n;
        if (it->scanned < lim)
            break;
    }
    if (st == CACHE_OK && it->n_bad > 0) {
        mts_err_set(err, "%zu cache row(s) skipped; first: %s", it->n_bad, it->first_bad.msg);
        st = CACHE_BAD_ROW;
    }
    free(it->cursor);
    free(it);
    return st;
}

enum cache_status
cache_list(struct cache *c, cache_row_fn fn, void *arg, struct mts_err *err)
{
    return iterate(c, ST_LIST, NULL, NULL, SIZE_MAX, fn, arg, err);
}

enum cache_status
cache_due(struct cache *c, int64_t now, int64_t check_interval, int64_t refresh_before,
          int64_t used_since, const char *after, size_t max_rows, cache_row_fn fn, void *arg,
          struct mts_err *err)
{
    /* In the order of ?3..?6 in ST_DUE. */
    const int64_t due[4] = {used_since, check_interval, now, refresh_before};

    return iterate(c, ST_DUE, after, due, max_rows, fn, arg, err);
}

/* ------------------------------------------------------------ tls_probes */

enum cache_status
cache_put_tls_probe(struct cache *c, const struct cache_val *v, struct mts_err *err)
{
    sqlite3_stmt *s = c->st[ST_PUT_TLS_PROBE];
    enum cache_status st;

    pthread_mutex_lock(&c->mu);
    st = run(c, s, bind_vals(s, v, CACHE_TLS_PROBE_NCOLS), "cannot store probe row", err);
    pthread_mutex_unlock(&c->mu);
    return st;
}

enum cache_status
cache_get_tls_probes(struct cache *c, const char *host, int port, size_t max_rows,
                     cache_vals_fn fn, void *arg, struct mts_err *err)
{
    sqlite3_stmt *s = c->st[ST_GET_TLS_PROBES];
    enum cache_status st = CACHE_OK;
    int rc;

    if (!cache_row_name_ok("MX host", host, err))
        return CACHE_ERROR;
    pthread_mutex_lock(&c->mu);
    rc = sqlite3_bind_text(s, 1, host, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 2, port);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)max_rows);
    /* Few rows (one per address): fn runs under the lock and must not use the cache. */
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        struct cache_val v[CACHE_TLS_PROBE_NCOLS];

        if ((rc = sqlite3_step(s)) != SQLITE_ROW)
            break;
        read_vals(s, v, CACHE_TLS_PROBE_NCOLS);
        fn(v, arg);
    }
    if (rc != SQLITE_DONE)
        st = fail(c, rc, "cannot read probe rows", err);
    stmt_done(s);
    pthread_mutex_unlock(&c->mu);
    return st;
}

enum cache_status
cache_purge_tls_probes(struct cache *c, int64_t expired_before, struct mts_err *err)
{
    sqlite3_stmt *s = c->st[ST_PURGE_TLS_PROBES];
    enum cache_status st;

    pthread_mutex_lock(&c->mu);
    st = run(c, s, sqlite3_bind_int64(s, 1, expired_before), "cannot purge probe rows", err);
    pthread_mutex_unlock(&c->mu);
    return st;
}

enum cache_status
cache_tls_probed_since(struct cache *c, int64_t since, size_t max_rows, cache_probed_fn fn,
                       void *arg, struct mts_err *err)
{
    sqlite3_stmt *s = c->st[ST_TLS_PROBED_SINCE];
    enum cache_status st = CACHE_OK;
    int rc;

    pthread_mutex_lock(&c->mu);
    rc = sqlite3_bind_int64(s, 1, since);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)max_rows);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        const unsigned char *host;

        if ((rc = sqlite3_step(s)) != SQLITE_ROW)
            break;
        host = sqlite3_column_text(s, 0);
        if (host != NULL && sqlite3_column_type(s, 1) == SQLITE_INTEGER)
            fn((const char *)host, sqlite3_column_int64(s, 1), arg);
    }
    if (rc != SQLITE_DONE)
        st = fail(c, rc, "cannot read probe rows", err);
    stmt_done(s);
    pthread_mutex_unlock(&c->mu);
    return st;
}
