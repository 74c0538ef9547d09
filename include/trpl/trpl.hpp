// trpl for C++: everything the Rust book's async chapter uses, under the book's names.
// #include <trpl/trpl.hpp>, then trpl::run, spawn_task, sleep, join, join3, channel, yield_now.
#pragma once

#include "trpl/awaitable.hpp"
#include "trpl/diagnostics.hpp"
#include "trpl/error.hpp"
#include "trpl/join.hpp"
#include "trpl/join_error.hpp"
#include "trpl/join_handle.hpp"
#include "trpl/runtime.hpp"
#include "trpl/sync/channel.hpp"
#include "trpl/task.hpp"
#include "trpl/time.hpp"
#include "trpl/yield_now.hpp"
