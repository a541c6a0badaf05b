/*
 * fdlimit - the milter's descriptor limit, raised at start.
 *
 * SYNOPSIS
 *	fdlimit_raise();
 *
 * DESCRIPTION
 *	Every MTA connection holds a descriptor for as long as the MTA keeps
 *	it open (idle smtpd processes keep theirs), and a common soft limit
 *	is 1,024: past it the milter can accept nobody, not even to say no.
 *	fdlimit_raise sets the soft RLIMIT_NOFILE to the hard one (at most
 *	FDLIMIT_MAX) and logs the limit in effect; a warning when it stays
 *	below FDLIMIT_LOW, with what to change.
 *
 * DIAGNOSTICS
 *	None returned: a limit that cannot be raised is logged and kept.
 */
#ifndef MTS_FDLIMIT_H
#define MTS_FDLIMIT_H

#define FDLIMIT_MAX 65536	/* no need for more: each connection is a thread */
#define FDLIMIT_LOW 4096	/* below this, a burst of MTA connections can hit it */

void fdlimit_raise(void);

#endif
