// Listing 17-12: the sending block owns tx (`async move`), so tx is dropped when it finishes.
// Lines arrive 500 ms apart; then the channel closes, recv() ends, and the program exits (~2 s).
#include <chrono>
#include <string>
#include <trpl/trpl.hpp>
#include <utility>
#include <vector>

#include "println.hpp"

namespace listing_17_12 {

trpl::Task<> main_future() {
  auto [tx, rx] = trpl::channel<std::string>();

  // `async move`: the lambda owns tx, and join owns the lambda (it is passed as an rvalue)
  // and destroys it as soon as its coroutine completes; that drops tx and closes the channel.
  auto tx_fut = [tx = std::move(tx)]() -> trpl::Task<> {
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
      // The seed text used eprintln! here; the book's listing file prints to stdout.
      println("received '" + *value + "'");
    }
  };

  co_await trpl::join(std::move(tx_fut), rx_fut);
}

}  // namespace listing_17_12

#ifndef TRPL_LISTINGS_AS_LIBRARY
int main() { trpl::run(listing_17_12::main_future); }
#endif
