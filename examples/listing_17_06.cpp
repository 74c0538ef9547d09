// Listing 17-6: spawn_task starts a counting task that runs beside the main future's own loop.
// Both count every 500 ms; when the main loop ends (~2 s) run returns and the task is cancelled.
#include <chrono>
#include <string>
#include <trpl/trpl.hpp>

#include "println.hpp"

namespace listing_17_06 {

trpl::Task<> main_future() {
  // Dropping the JoinHandle detaches the task (it keeps running); it does not cancel it.
  // Only the runtime's shutdown at the end of trpl::run stops it, mid-loop.
  (void)trpl::spawn_task([]() -> trpl::Task<> {
    for (int i = 1; i < 10; ++i) {
      println("hi number " + std::to_string(i) + " from the first task!");
      co_await trpl::sleep(std::chrono::milliseconds(500));
    }
  });

  for (int i = 1; i < 5; ++i) {
    println("hi number " + std::to_string(i) + " from the second task!");
    co_await trpl::sleep(std::chrono::milliseconds(500));
  }
}

}  // namespace listing_17_06

#ifndef TRPL_LISTINGS_AS_LIBRARY
int main() { trpl::run(listing_17_06::main_future); }
#endif
