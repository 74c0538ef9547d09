// Listing 17-10: send four messages with 500 ms sleeps, then receive them, all in one future.
// Nothing prints for 2 s, then all four lines at once; it never exits (tx is never dropped).
#include <chrono>
#include <string>
#include <trpl/trpl.hpp>
#include <vector>

#include "println.hpp"

namespace listing_17_10 {

trpl::Task<> main_future() {
  auto [tx, rx] = trpl::channel<std::string>();

  std::vector<std::string> vals = {
      std::string("hi"),
      std::string("from"),
      std::string("the"),
      std::string("future"),
  };

  for (std::string& val : vals) {
    tx.send(std::move(val)).value();
    co_await trpl::sleep(std::chrono::milliseconds(500));
  }

  // On purpose, as in the book: tx lives in this same frame, so after the fourth message
  // recv() waits forever for a sender that is never dropped.
  while (auto value = co_await rx.recv()) {
    println("received '" + *value + "'");
  }
}

}  // namespace listing_17_10

#ifndef TRPL_LISTINGS_AS_LIBRARY
int main() { trpl::run(listing_17_10::main_future); }
#endif
