/*
 * netstring_echo - the physical limit for a socketmap server: answers
 * every netstring request with the same fixed reply, computing nothing.
 *
 * SYNOPSIS
 *	netstring_echo -s SOCKET [-r REPLY]
 *
 * DESCRIPTION
 *	SOCKET is unix:PATH or inet:PORT@HOST. One thread per connection,
 *	blocking I/O: it reads what has come, answers every complete request
 *	in it (pipelined requests in one write), and reads again. The reply
 *	is "OK secure match=mx1.example servername=hostname" unless -r says
 *	otherwise. Runs until SIGTERM or SIGINT; removes its unix socket.
 *
 * DIAGNOSTICS
 *	A malformed netstring or one longer than 10065 bytes closes that
 *	connection. Usage or socket errors: a line on stderr, exit status 2.
 */
#define _GNU_SOURCE 1 /* accept4 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_REQUEST 10065
#define IN_CAP (MAX_REQUEST + 8)
#define OUT_CAP 65536

static char reply[256];
static size_t reply_len;
static const char *unix_path;

static void
on_signal(int sig)
{
    (void)sig;
    if (unix_path != NULL)
        (void)unlink(unix_path);
    _exit(0);
}

static bool
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void *
serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *in = malloc(IN_CAP), *out = malloc(OUT_CAP);
    size_t in_len = 0;

    while (in != NULL && out != NULL) {
        ssize_t r = read(fd, in + in_len, IN_CAP - in_len);
        size_t off = 0, out_len = 0;

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        in_len += (size_t)r;
        for (;;) { /* every complete request */
            size_t i = off, len = 0;

            while (i < in_len && in[i] >= '0' && in[i] <= '9' && i - off < 7)
                len = len * 10 + (size_t)(in[i++] - '0');
            if (i == in_len)
                break; /* the length is not complete */
            if (i == off || i - off > 6 || in[i] != ':' || len > MAX_REQUEST)
                goto done;
            if (in_len - (i + 1) < len + 1)
                break; /* the payload is not complete */
            if (in[i + 1 + len] != ',')
                goto done;
            off = i + 2 + len;
            if (out_len + reply_len > OUT_CAP) {
                if (!write_all(fd, out, out_len))
                    goto done;
                out_len = 0;
            }
            memcpy(out + out_len, reply, reply_len);
            out_len += reply_len;
        }
        if (out_len > 0 && !write_all(fd, out, out_len))
            break;
        memmove(in, in + off, in_len - off);
        in_len -= off;
        if (in_len == IN_CAP)
            break;
    }
done:
    free(in);
    free(out);
    close(fd);
    return NULL;
}

static int
listen_on(const char *s)
{
    int fd = -1, one = 1;

    if (strncmp(s, "unix:", 5) == 0) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};

        if (strlen(s + 5) >= sizeof(sun.sun_path))
            return -1;
        memcpy(sun.sun_path, s + 5, strlen(s + 5) + 1);
        (void)unlink(s + 5);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
            bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
            return -1;
        unix_path = s + 5;
    } else if (strncmp(s, "inet:", 5) == 0) {
        const char *at = strchr(s + 5, '@');
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
        char port[16];

        if (at == NULL || (size_t)(at - s - 5) >= sizeof(port))
            return -1;
        memcpy(port, s + 5, (size_t)(at - s - 5));
        port[at - s - 5] = '\0';
        if (getaddrinfo(at + 1, port, &hints, &ai) != 0)
            return -1;
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            freeaddrinfo(ai);
            return -1;
        }
        freeaddrinfo(ai);
    } else {
        return -1;
    }
    return listen(fd, 1024) == 0 ? fd : -1;
}

int
main(int argc, char **argv)
{
    const char *sock = NULL, *text = "OK secure match=mx1.example servername=hostname";
    pthread_attr_t a;
    int ch, lfd, n;

    while ((ch = getopt(argc, argv, "s:r:")) != -1) {
        switch (ch) {
        case 's': sock = optarg; break;
        case 'r': text = optarg; break;
        default: goto usage;
        }
    }
    if (sock == NULL || optind != argc)
        goto usage;
    n = snprintf(reply, sizeof(reply), "%zu:%s,", strlen(text), text);
    if (n < 0 || (size_t)n >= sizeof(reply))
        goto usage;
    reply_len = (size_t)n;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if ((lfd = listen_on(sock)) < 0) {
        fprintf(stderr, "netstring_echo: cannot listen on %s: %s\n", sock, strerror(errno));
        return 2;
    }
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        pthread_t t;

        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                perror("netstring_echo: accept");
            continue;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        if (pthread_create(&t, &a, serve, (void *)(intptr_t)fd) != 0)
            close(fd);
    }
usage:
    fprintf(stderr, "usage: netstring_echo -s unix:PATH|inet:PORT@HOST [-r REPLY]\n");
    return 2;
}
