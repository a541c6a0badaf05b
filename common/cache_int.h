/*
 * cache_int - what cache.c (the rows) and cache_conn.c (the connection:
 * open, schema, locks, healing) share. Not part of the cache's interface:
 * callers use cache.h. With them, the only files that include sqlite3.h.
 */
#ifndef MTS_CACHE_INT_H
#define MTS_CACHE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "cache.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

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
    ST_LIST_TLS_PROBES,
    ST_DELETE_TLS_PROBES,
    ST_FLUSH_TLS_PROBES,
    ST_N
};

struct cache {
    sqlite3 *db;
    pthread_mutex_t mu; /* serialises every use of db, sqlite3_errmsg included */
    sqlite3_stmt *st[ST_N];
    /*
     * The reads of one row that recipients wait for (cache_get,
     * cache_get_mx, cache_get_probe) have a connection of their own, so
     * that they never queue behind a write that holds mu through SQLite's
     * busy wait (another process holding the database): in WAL mode a read
     * needs no lock a writer holds. rdb is NULL for in-memory and read-only
     * caches (and a stand-in): those reads then use db. rmu serialises
     * rdb and rst; taking mu while holding rmu is only ever tried, never
     * waited for (heal_locked takes rmu after mu).
     */
    sqlite3 *rdb;
    pthread_mutex_t rmu;
    sqlite3_stmt *rst[ST_N]; /* only ST_GET, ST_GET_PROBE and ST_GET_MX */
    unsigned heals;          /* heal_locked calls so far (under mu and rmu) */
    atomic_uint heal_due;    /* heals + 1: a read on rdb found that file corrupt, mu was busy */
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

/* The connection's mutex; cache_lock heals a stand-in first when due. */
void cache_lock(struct cache *c);
void cache_unlock(struct cache *c);
/* The same for readers: false when the thread's wait bound (cache_bound_waits)
 * passed before the lock was had. */
bool cache_lock_read(struct cache *c);
void cache_unlock_read(struct cache *c);

/*
 * For a read of one row: the connection to use, locked within the
 * thread's bound (the readers' own, else db's), and its statement which
 * in *s; NULL when the bound passed first. Undo with cache_unlock_row,
 * saying whether the read found the file corrupt.
 */
sqlite3 *cache_lock_row(struct cache *c, int which, sqlite3_stmt **s);
void cache_unlock_row(struct cache *c, sqlite3 *db, bool corrupt);

/* Maps an SQLite result on connection db (c's or its readers') to our
 * status; unlike cache_fail it never marks the file for healing. */
enum cache_status cache_fail_on(struct cache *c, sqlite3 *db, int rc, const char *what,
                                struct mts_err *err);

/* Maps an SQLite result to our status and a sentence naming the file. */
enum cache_status cache_fail(struct cache *c, int rc, const char *what, struct mts_err *err);
int cache_exec(struct cache *c, const char *sql);

#endif
