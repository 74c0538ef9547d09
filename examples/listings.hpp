// The book's listings 17-6 … 17-13 as functions (library target trpl_listings), for tests that
// run a listing's main future on a runtime of their choosing, e.g. one with paused time.
#pragma once

#include <trpl/task.hpp>

// Each main_future() is the async block that the listing's main passes to trpl::run. Those of
// 17-10 and 17-11 never complete, by design (the book's point about dropping the sender).
namespace listing_17_06 {
trpl::Task<> main_future();
}
namespace listing_17_07 {
trpl::Task<> main_future();
}
namespace listing_17_08 {
trpl::Task<> main_future();
}
namespace listing_17_09 {
trpl::Task<> main_future();
}
namespace listing_17_10 {
trpl::Task<> main_future();
}
namespace listing_17_11 {
trpl::Task<> main_future();
}
namespace listing_17_12 {
trpl::Task<> main_future();
}
namespace listing_17_13 {
trpl::Task<> main_future();
}
