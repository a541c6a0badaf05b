/*
 * ctl - the commands of mtasts-ctl. Each ctl_<command>(argc, argv) gets the
 * command's own arguments (argv[0] is the command name) and returns the
 * process exit status.
 */
#ifndef MTS_CTL_H
#define MTS_CTL_H

#include <jansson.h>

/* Exit statuses, documented in man/mtasts-ctl.1. */
#define CTL_EXIT_OK 0		/* success; the input is valid */
#define CTL_EXIT_INVALID 1	/* the input is invalid; the reason was printed */
#define CTL_EXIT_USAGE 2	/* bad arguments, or a file that cannot be read */

int ctl_validate_policy(int argc, char **argv);
int ctl_validate_txt(int argc, char **argv);

/* Prints one JSON value on stdout followed by a newline. */
void ctl_print_json(json_t *value);

#endif
