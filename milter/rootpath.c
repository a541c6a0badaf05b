/*
 * rootpath - paths touched while root; see rootpath.h.
 */
#include "rootpath.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

int
rootpath_user(const struct config *cfg, uid_t *uid, gid_t *gid, struct mts_err *err)
{
    *uid = getuid();
    *gid = getgid();
    if (cfg->user[0] != '\0') {
        struct passwd *pw = getpwnam(cfg->user);
        if (pw == NULL) {
            mts_err_set(err, "%s: option user: no such user \"%s\"", cfg->path, cfg->user);
            return -1;
        }
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
    }
    if (cfg->group[0] != '\0') {
        struct group *gr = getgrnam(cfg->group);
        if (gr == NULL) {
            mts_err_set(err, "%s: option group: no such group \"%s\"", cfg->path, cfg->group);
            return -1;
        }
        *gid = gr->gr_gid;
    }
    return 0;
}

int
rootpath_make_parent(const char *path, uid_t uid, gid_t gid, struct mts_err *err)
{
    char dir[512], *slash;
    struct stat st;

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        mts_err_set(err, "path too long: %s", path);
        return -1;
    }
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            mts_err_set(err, "cannot create %s: %s", dir, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(dir, 0750) == 0) {
        /* Ours, just made: nobody else can have put a link in its place
         * between mkdir and lchown that lchown would follow. */
        if (lchown(dir, uid, gid) != 0)
            log_msg(LOG_WARNING, "cannot give %s to the milter user: %s", dir, strerror(errno));
        return 0;
    }
    if (errno != EEXIST) {
        mts_err_set(err, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    /* There already (a link to a folder elsewhere is the operator's
     * choice): used as it is, never given away, so no link is followed
     * by a chown. */
    if (stat(dir, &st) != 0) {
        mts_err_set(err, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        mts_err_set(err, "%s is not a folder: remove it, or name another path", dir);
        return -1;
    }
    return 0;
}

int
rootpath_write_pid(const char *path, struct mts_err *err)
{
    char line[32];
    int fd, n;

    if (path[0] == '\0')
        return 0;
    /* Whatever has the name goes: a link is removed, not followed. */
    if (unlink(path) != 0 && errno != ENOENT) {
        mts_err_set(err, "cannot replace the pid file %s: %s", path, strerror(errno));
        return -1;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        mts_err_set(err, "cannot write the pid file %s: %s", path, strerror(errno));
        return -1;
    }
    n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
    if (write(fd, line, (size_t)n) != n) {
        mts_err_set(err, "cannot write the pid file %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (close(fd) != 0) {
        mts_err_set(err, "cannot write the pid file %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void
rootpath_give(const char *path, uid_t uid, gid_t gid, const char *what)
{
    if (lchown(path, uid, gid) != 0)
        log_msg(LOG_WARNING, "cannot give %s %s to the milter user: %s", what, path,
                strerror(errno));
}
