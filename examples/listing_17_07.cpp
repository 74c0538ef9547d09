// Listing 17-7: awaiting the spawned task's JoinHandle keeps run going until the task is done.
// Both loops count every 500 ms; the first task's count runs to 9, so it exits at ~4.5 s.
#include <chrono>
#include <string>
#include <trpl/trpl.hpp>

#include "println.hpp"

namespace listing_17_07 {

trpl::Task<> main_future() {
  auto handle = trpl::spawn_task([]() -> trpl::Task<> {
    for (int i = 1; i < 10; ++i) {
      println("hi number " + std::to_string(i) + " from the first task!");
      co_await trpl::sleep(std::chrono::milliseconds(500));
    }
  });

  for (int i = 1; i < 5; ++i) {
    println("hi number " + std::to_string(i) + " from the second task!");
    co_await trpl::sleep(std::chrono::milliseconds(500));
  }

  // The book's `handle.await.unwrap()`: the handle yields std::expected<void, JoinError>.
  (co_await handle).value();
}

}  // namespace listing_17_07

#ifndef TRPL_LISTINGS_AS_LIBRARY
int main() { trpl::run(listing_17_07::main_future); }
#endif
