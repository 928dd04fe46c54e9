/* SPDX-License-Identifier: Apache-2.0 */
#include "stats.h"

double stats_median(double *v, int n)
{
	/* insertion sort: benches take medians of a few dozen rounds */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
