/*
 * NAME
 *	rootpath - the paths the milter (and mtasts-ctl) touch while still
 *	root: the folders of the sockets and the cache, the pid file, the
 *	sockets given to the milter user.
 *
 * SYNOPSIS
 *	rootpath_user(cfg, &uid, &gid, &err);		user and group options
 *	rootpath_make_parent(cfg->cache_db, uid, gid, &err);
 *	rootpath_write_pid(cfg->pid_file, &err);
 *	rootpath_give(socket_path, uid, gid, "the map socket");
 *
 * DESCRIPTION
 *	These run as root in folders the milter user owns (it writes its
 *	socket and cache there), so nothing here follows a symbolic link the
 *	user may have left: rootpath_make_parent gives (lchown) only a
 *	folder it has just made, and takes one that is there as it is (a
 *	link to a folder elsewhere is the operator's choice); it refuses a
 *	last folder that is not a folder; rootpath_write_pid removes whatever has the pid file's
 *	name and creates the file anew (O_EXCL | O_NOFOLLOW), so a link to
 *	/etc/shadow is replaced, never written through; rootpath_give uses
 *	lchown. The parents above the last folder are made 0755, the last
 *	0750 (the milter user's; the MTA reaches the sockets through the
 *	group).
 *
 * DIAGNOSTICS
 *	-1 and a sentence naming the path and the system's reason.
 *	rootpath_give only logs a warning: a socket left to root still works
 *	for a milter that stays root.
 */
#ifndef MTS_ROOTPATH_H
#define MTS_ROOTPATH_H

#include <sys/types.h>

#include "config.h"
#include "err.h"

/* The uid and gid of the user and group options (ours when unset). */
int rootpath_user(const struct config *cfg, uid_t *uid, gid_t *gid, struct mts_err *err);

/* Makes the folder that holds path, and its parents. */
int rootpath_make_parent(const char *path, uid_t uid, gid_t gid, struct mts_err *err);

/* Writes our pid to path ("" : nothing). */
int rootpath_write_pid(const char *path, struct mts_err *err);

/* Gives path (a socket just made) to uid:gid, without following a link. */
void rootpath_give(const char *path, uid_t uid, gid_t gid, const char *what);

#endif
