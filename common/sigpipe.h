/*
 * sigpipe - keep a write to a peer that has gone from killing the process.
 *
 * SYNOPSIS
 *	struct sigpipe_guard g;
 *
 *	sigpipe_block(&g);
 *	... SSL_write, hiredis: writes that cannot pass MSG_NOSIGNAL ...
 *	sigpipe_restore(&g);
 *
 * DESCRIPTION
 *	write(2) to a socket whose peer has reset it raises SIGPIPE, whose
 *	default action ends the process. Libraries that write for us (OpenSSL,
 *	hiredis) cannot be told to use send(MSG_NOSIGNAL), and mtasts-ctl and
 *	the tests do not ignore SIGPIPE process-wide; so, the way curl does,
 *	sigpipe_block blocks SIGPIPE for the calling thread only, and
 *	sigpipe_restore swallows the one such a write made pending (the write
 *	itself fails with EPIPE) and puts the thread's signal mask back. No
 *	process-wide handler is touched.
 *
 *	A SIGPIPE that was already pending for the thread before
 *	sigpipe_block is not ours and is left pending. Both calls act on the
 *	calling thread: block and restore on the same thread, in pairs,
 *	nested at most by strict LIFO order.
 */
#ifndef MTS_SIGPIPE_H
#define MTS_SIGPIPE_H

#include <signal.h>
#include <stdbool.h>

/* What sigpipe_restore needs; the caller's storage, opaque to it. */
struct sigpipe_guard {
    sigset_t old;		/* the thread's mask before the block */
    bool was_pending;		/* a SIGPIPE was pending already: not ours */
};

/* Block SIGPIPE for the calling thread, remembering its mask in *g. */
void sigpipe_block(struct sigpipe_guard *g);

/* Swallow a SIGPIPE made pending since sigpipe_block(g), then restore the mask. */
void sigpipe_restore(struct sigpipe_guard *g);

#endif
