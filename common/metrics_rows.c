/*
 * metrics_rows - the cache's rows per table, read by the scrape; see
 * metrics_rows.h.
 */
#include "metrics_rows.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* The schema's tables (cache_conn.c): fixed words, so fixed labels. */
static const char *const table_w[] = {"domains", "mx_sets", "mx_probes", "tls_probes",
                                      "verdict_stats"};
#define N_TABLES (sizeof(table_w) / sizeof(table_w[0]))

static struct {
    pthread_mutex_t mu;		/* scrapes and configure only */
    char *path;
    int64_t interval_us;
    sqlite3 *db;
    int64_t read_at;		/* metrics_clock_us of the last read; 0: never */
    bool have[N_TABLES];
    int64_t rows[N_TABLES];
} r = {PTHREAD_MUTEX_INITIALIZER, NULL, 30 * 1000000LL, NULL, 0, {false}, {0}};

static void
close_db(void)
{
    if (r.db != NULL)
        sqlite3_close(r.db);
    r.db = NULL;
}

void
metrics_rows_configure(const char *cache_db, int64_t interval_s)
{
    pthread_mutex_lock(&r.mu);
    r.interval_us = interval_s * 1000000;
    if (cache_db == NULL)
        cache_db = "";
    if (r.path == NULL || strcmp(r.path, cache_db) != 0) {
        char *p = strdup(cache_db);

        if (p != NULL) {	/* out of memory: the old file goes on being read */
            free(r.path);
            r.path = p;
            close_db();
            r.read_at = 0;
            memset(r.have, 0, sizeof(r.have));
        }
    }
    pthread_mutex_unlock(&r.mu);
}

/* Under r.mu: one count(*) per table; a table the file does not hold (an
 * older schema) has no sample. False when the file cannot be read. */
static bool
read_rows(void)
{
    if (r.path == NULL || r.path[0] == '\0')
        return false;
    if (r.db == NULL) {
        if (sqlite3_open_v2(r.path, &r.db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK) {
            close_db();
            return false;
        }
        sqlite3_busy_timeout(r.db, METRICS_ROWS_BUSY_MS);
    }
    for (size_t i = 0; i < N_TABLES; i++) {
        char sql[64];
        sqlite3_stmt *st = NULL;
        int rc;

        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table_w[i]);
        if (sqlite3_prepare_v2(r.db, sql, -1, &st, NULL) != SQLITE_OK) {
            /* No such table (yet): the others still count. */
            sqlite3_finalize(st);
            r.have[i] = false;
            continue;
        }
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            r.rows[i] = sqlite3_column_int64(st, 0);
            r.have[i] = true;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW) {
            /* Busy or broken: the counts read before stand; reopen next time. */
            close_db();
            return false;
        }
    }
    return true;
}

void
metrics_rows_render(FILE *f)
{
    int64_t now = metrics_clock_us();

    pthread_mutex_lock(&r.mu);
    if (r.read_at == 0 || now - r.read_at >= r.interval_us) {
        if (read_rows())
            r.read_at = now;
    }
    fprintf(f, "# HELP mtasts_cache_rows Rows in the shared cache, by table (counted at most "
               "once every metrics_cache_rows_interval).\n# TYPE mtasts_cache_rows gauge\n");
    for (size_t i = 0; i < N_TABLES; i++)
        if (r.have[i])
            fprintf(f, "mtasts_cache_rows{table=\"%s\"} %lld\n", table_w[i],
                    (long long)r.rows[i]);
    fprintf(f, "# HELP mtasts_cache_rows_age_seconds How old the row counts are (-1: never "
               "read).\n# TYPE mtasts_cache_rows_age_seconds gauge\n");
    fprintf(f, "mtasts_cache_rows_age_seconds %.3f\n",
            r.read_at == 0 ? -1.0 : (double)(now - r.read_at) / 1e6);
    pthread_mutex_unlock(&r.mu);
}
