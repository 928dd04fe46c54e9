/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4 address and prefix helpers for the control-plane model. Addresses are network order. */
#ifndef CILIATE_MODEL_IPADDR_H
#define CILIATE_MODEL_IPADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IP4_STR_MAX 16   /* "255.255.255.255" + NUL */
#define CIDR4_STR_MAX 19 /* "255.255.255.255/32" + NUL */

/* Parses dotted-quad "A.B.C.D" into *ip (network order); -EINVAL if malformed. */
int ip4_parse(const char *s, uint32_t *ip);

/* Parses "A.B.C.D/N" into *ip, *len. With strict, set host bits are an error (-EINVAL);
 * otherwise they are cleared. */
int cidr4_parse(const char *s, bool strict, uint32_t *ip, uint8_t *len);

/* Returns the netmask (network order) of a prefix length 0..32. */
uint32_t ip4_mask(uint8_t len);

/* Formats ip as dotted quad into buf (at least IP4_STR_MAX bytes); returns buf. */
const char *ip4_format(uint32_t ip, char *buf);

/* Formats ip/len into buf (at least CIDR4_STR_MAX bytes); returns buf. */
const char *cidr4_format(uint32_t ip, uint8_t len, char *buf);

/* True if ip lies inside net/len. */
bool cidr4_contains_ip(uint32_t net, uint8_t len, uint32_t ip);

/* True if prefix inner/ilen lies inside (or equals) prefix outer/olen. */
bool cidr4_contains(uint32_t outer, uint8_t olen, uint32_t inner, uint8_t ilen);

/* True if the two prefixes share any address. */
bool cidr4_overlaps(uint32_t a, uint8_t alen, uint32_t b, uint8_t blen);

#endif
