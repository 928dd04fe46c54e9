/* SPDX-License-Identifier: Apache-2.0 */
/* Scratch directories of the unit tests. */
#ifndef CILIATE_TESTS_TMPDIR_H
#define CILIATE_TESTS_TMPDIR_H

/* Removes dir and the files directly in it (the stores the tests create are flat). */
void test_rm_dir(const char *dir);

#endif
