// Listing 17-8: trpl::join runs two async blocks concurrently inside one task, no spawning.
// join is fair: the two lines of each 500 ms tick always come first-then-second; exits at ~4.5 s.
#include <chrono>
#include <string>
#include <trpl/trpl.hpp>

#include "println.hpp"

namespace listing_17_08 {

trpl::Task<> main_future() {
  // Plain `async` blocks: lambdas that do nothing until join calls them.
  auto fut1 = []() -> trpl::Task<> {
    for (int i = 1; i < 10; ++i) {
      println("hi number " + std::to_string(i) + " from the first task!");
      co_await trpl::sleep(std::chrono::milliseconds(500));
    }
  };

  auto fut2 = []() -> trpl::Task<> {
    for (int i = 1; i < 5; ++i) {
      println("hi number " + std::to_string(i) + " from the second task!");
      co_await trpl::sleep(std::chrono::milliseconds(500));
    }
  };

  co_await trpl::join(fut1, fut2);
}

}  // namespace listing_17_08

#ifndef TRPL_LISTINGS_AS_LIBRARY
int main() { trpl::run(listing_17_08::main_future); }
#endif
