/*
 * cafile - the trust anchors of a PEM file, parsed once and shared by every
 * policy fetch, parsed again when the file changes.
 *
 * SYNOPSIS
 *	#include "cafile.h"
 *
 *	struct cafile *a = cafile_get("/etc/mtasts/ca.pem", &err);
 *	cafile_add_to(a, SSL_CTX_get_cert_store(ctx));   one connection's store
 *	cafile_put(a);
 *	cafile_cleanup();                                at exit
 *
 * DESCRIPTION
 *	Reading a CA file (PEM, ASN.1 and public key decoding) for every HTTPS
 *	fetch, as libcurl does, cost about a fifth of a cold lookup's CPU.
 *	cafile_get returns the certificates and CRLs of path, parsed, shared
 *	and reference-counted. It stats path on every call and parses it again
 *	when its device, inode, size, modification or change time differ from
 *	the parsed copy's, so a replaced or edited file is used from the next
 *	fetch on; a set still in use stays valid until its last cafile_put.
 *	cafile_forget drops every parsed copy (a reload: the next call parses
 *	again whatever the file's times say).
 *
 *	cafile_add_to adds the set to a connection's own X509_STORE (up-refs,
 *	no parsing). The store is never shared: whatever a connection sets on
 *	its store (libcurl sets verification flags there) stays with it.
 *
 *	Thread-safe. Parsing happens under one lock, so callers that find a
 *	file changed (or a cold start, 50 fetches at once) parse it once, the
 *	rest wait for that copy.
 *
 * DIAGNOSTICS
 *	cafile_get returns NULL with a reason when path cannot be read or
 *	holds no certificate or CRL, or a malformed PEM block (the cases in
 *	which OpenSSL's X509_STORE_load_file fails). cafile_add_to returns -1
 *	when the store refuses a certificate (memory).
 */
#ifndef MTS_CAFILE_H
#define MTS_CAFILE_H

#include <openssl/x509.h>

#include "err.h"

struct cafile;

struct cafile *cafile_get(const char *path, struct mts_err *err);
int cafile_add_to(const struct cafile *a, X509_STORE *store);
void cafile_put(struct cafile *a);
/* How many certificates the set holds (tests, messages). */
int cafile_count(const struct cafile *a);

void cafile_forget(void);
void cafile_cleanup(void);

#endif
