/*
 * address - envelope address to recipient domain; see address.h.
 */
#include "address.h"

#include <string.h>

#include "domain.h"

enum address_result
address_domain(const char *addr, char *domain, size_t domainsz, struct mts_err *err)
{
    size_t len, start = 0, end, at = (size_t)-1;
    int in_quote = 0;
    /* UTF-8 may be longer than its A-label: the 253 limit applies after IDNA. */
    char buf[ADDRESS_MAX + 1];

    if (domainsz > 0)
        domain[0] = '\0';
    if (addr == NULL) {
        mts_err_set(err, "no address");
        return ADDRESS_INVALID;
    }
    len = strnlen(addr, ADDRESS_MAX + 1);
    if (len > ADDRESS_MAX) {
        mts_err_set(err, "address longer than %d bytes", ADDRESS_MAX);
        return ADDRESS_INVALID;
    }
    /* Anywhere, the source route included, a control byte is malformed. */
    for (size_t i = 0; i < len; i++) {
        if (addr[i] == '\r' || addr[i] == '\n' || (unsigned char)addr[i] < 0x09) {
            mts_err_set(err, "control character in the address");
            return ADDRESS_INVALID;
        }
    }
    end = len;
    while (start < end && (addr[start] == ' ' || addr[start] == '\t'))
        start++;
    while (end > start && (addr[end - 1] == ' ' || addr[end - 1] == '\t'))
        end--;
    if (start < end && addr[start] == '<') {
        if (addr[end - 1] != '>') {
            mts_err_set(err, "unbalanced angle brackets");
            return ADDRESS_INVALID;
        }
        start++;
        end--;
    } else if (start < end && addr[end - 1] == '>') {
        mts_err_set(err, "unbalanced angle brackets");
        return ADDRESS_INVALID;
    }
    if (start == end)
        return ADDRESS_NULL;
    /* A source route "@a,@b:" is obsolete and names relays, not the mailbox. */
    if (addr[start] == '@') {
        const char *colon = memchr(addr + start, ':', end - start);
        if (colon == NULL) {
            mts_err_set(err, "source route without ':'");
            return ADDRESS_INVALID;
        }
        start = (size_t)(colon - addr) + 1;
        if (start == end) {
            mts_err_set(err, "source route without a mailbox");
            return ADDRESS_INVALID;
        }
    }
    for (size_t i = start; i < end; i++) {
        char c = addr[i];

        if (c == '\0' || c == '\r' || c == '\n') {
            mts_err_set(err, "control character in the address");
            return ADDRESS_INVALID;
        }
        if (in_quote) {
            if (c == '\\' && i + 1 < end)
                i++;
            else if (c == '"')
                in_quote = 0;
            continue;
        }
        if (c == '"')
            in_quote = 1;
        else if (c == '@')
            at = i;
        else if (c == '<' || c == '>') {
            mts_err_set(err, "angle bracket inside the address");
            return ADDRESS_INVALID;
        }
    }
    if (in_quote) {
        mts_err_set(err, "unterminated quoted local part");
        return ADDRESS_INVALID;
    }
    if (at == (size_t)-1)
        return ADDRESS_NO_DOMAIN;
    if (at + 1 == end) {
        mts_err_set(err, "empty domain");
        return ADDRESS_INVALID;
    }
    if (addr[at + 1] == '[') {
        /* An address literal, "[192.0.2.1]", is whole or it is malformed. */
        const char *close = memchr(addr + at + 1, ']', end - at - 1);
        if (close == NULL || (size_t)(close - addr) != end - 1) {
            mts_err_set(err, "malformed address literal");
            return ADDRESS_INVALID;
        }
        return ADDRESS_NO_DOMAIN;	/* no Policy Domain (RFC 8461 §3.4) */
    }
    memcpy(buf, addr + at + 1, end - at - 1);
    buf[end - at - 1] = '\0';
    if (domain_normalize(buf, domain, domainsz, err) != 0)
        return ADDRESS_INVALID;
    return ADDRESS_OK;
}
