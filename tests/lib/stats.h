/* SPDX-License-Identifier: Apache-2.0 */
/* Small statistics for the benches. */
#ifndef CILIATE_TEST_STATS_H
#define CILIATE_TEST_STATS_H

/* Median of v[0..n) (n >= 1); sorts v in place. */
double stats_median(double *v, int n);

#endif
