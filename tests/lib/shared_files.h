/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared inputs beside the repository (../shared, or $CILIATE_SHARED where a test reads
 * it): the SPEC's examples and the pcap corpus. A check that needs one must not vanish when
 * it is missing: under CI=true the test fails, naming the path; elsewhere it is skipped
 * with a message saying so (cmocka reports it as SKIPPED). Include after <cmocka.h>.
 */
#ifndef CILIATE_TESTS_SHARED_FILES_H
#define CILIATE_TESTS_SHARED_FILES_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline bool shared_files_ci(void)
{
	const char *ci = getenv("CI");

	return ci && !strcmp(ci, "true");
}

/* Ends the test: what (a path or pattern of ../shared) is missing. */
#define SHARED_MISSING(what)                                                                  \
	do {                                                                                  \
		if (shared_files_ci())                                                        \
			fail_msg("%s is missing: these checks need the shared examples/corpus " \
				 "(../shared beside the repository, or CILIATE_SHARED); under "  \
				 "CI=true a missing one fails instead of skipping",              \
				 (what));                                                         \
		print_message("SKIPPED: %s is missing (../shared); under CI=true this "      \
			      "fails\n",                                                      \
			      (what));                                                        \
		skip();                                                                       \
	} while (0)

/* Skips (or, under CI=true, fails) the test unless path can be read. */
#define NEED_SHARED(path)                                    \
	do {                                                 \
		if (access((path), R_OK))                    \
			SHARED_MISSING(path);                \
	} while (0)

#endif
