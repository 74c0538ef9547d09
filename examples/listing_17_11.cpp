// Listing 17-11: sender and receiver in separate async blocks, run together by trpl::join.
// Lines arrive 500 ms apart, but it never exits: tx_fut only borrows tx, which outlives it.
#include <chrono>
#include <string>
#include <trpl/trpl.hpp>
#include <vector>

#include "println.hpp"

namespace listing_17_11 {

trpl::Task<> main_future() {
  auto [tx, rx] = trpl::channel<std::string>();

  // Plain `async` blocks: they capture by reference and are passed to join as lvalues, so
  // join only borrows them; tx is still alive in this frame when tx_fut finishes.
  auto tx_fut = [&]() -> trpl::Task<> {
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
  };

  auto rx_fut = [&]() -> trpl::Task<> {
    while (auto value = co_await rx.recv()) {
      println("received '" + *value + "'");
    }
  };

  co_await trpl::join(tx_fut, rx_fut);
}

}  // namespace listing_17_11

#ifndef TRPL_LISTINGS_AS_LIBRARY
int main() { trpl::run(listing_17_11::main_future); }
#endif
