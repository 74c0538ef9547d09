// Listing 17-13: two senders (tx and its clone tx1) feed one receiver; join3 runs all three.
// tx1 sends every 500 ms, tx every 1500 ms; the channel closes when both are dropped (~6 s).
#include <chrono>
#include <string>
#include <trpl/trpl.hpp>
#include <utility>
#include <vector>

#include "println.hpp"

namespace listing_17_13 {

trpl::Task<> main_future() {
  auto [tx, rx] = trpl::channel<std::string>();

  auto tx1 = tx.clone();
  auto tx1_fut = [tx1 = std::move(tx1)]() -> trpl::Task<> {
    std::vector<std::string> vals = {
        std::string("hi"),
        std::string("from"),
        std::string("the"),
        std::string("future"),
    };

    for (std::string& val : vals) {
      tx1.send(std::move(val)).value();
      co_await trpl::sleep(std::chrono::milliseconds(500));
    }
  };

  auto rx_fut = [&]() -> trpl::Task<> {
    while (auto value = co_await rx.recv()) {
      println("received '" + *value + "'");
    }
  };

  auto tx_fut = [tx = std::move(tx)]() -> trpl::Task<> {
    std::vector<std::string> vals = {
        std::string("more"),
        std::string("messages"),
        std::string("for"),
        std::string("you"),
    };

    for (std::string& val : vals) {
      tx.send(std::move(val)).value();
      co_await trpl::sleep(std::chrono::milliseconds(1500));
    }
  };

  // Both senders are owned (rvalues), so each is dropped when its block ends; the polling
  // order is the argument order, not the order the blocks were written in.
  co_await trpl::join3(std::move(tx1_fut), std::move(tx_fut), rx_fut);
}

}  // namespace listing_17_13

#ifndef TRPL_LISTINGS_AS_LIBRARY
int main() { trpl::run(listing_17_13::main_future); }
#endif
