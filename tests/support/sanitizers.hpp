// Which sanitizer this test binary is built with, so stress tests can size themselves
// (ThreadSanitizer runs atomics-heavy loops several times slower).
#pragma once

#if defined(__SANITIZE_THREAD__)
#define TRPL_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TRPL_TEST_TSAN 1
#endif
#endif
