// The README's first program (listing 17-12): the README shows this file, so it must compile.
// Prints four lines 500 ms apart, then exits once the sender block finishes.
#include <trpl/trpl.hpp>   // the book's listing 17-12, line for line (examples/readme.cpp)
#include <iostream>
using namespace std::chrono_literals;

int main() {
  trpl::run([]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<std::string>();

    auto tx_fut = [tx = std::move(tx)]() -> trpl::Task<> {      // async move { ... }
      for (std::string val : {"hi", "from", "the", "future"}) {
        tx.send(val).value();
        co_await trpl::sleep(500ms);
      }
    };
    auto rx_fut = [&]() -> trpl::Task<> {                       // async { ... }
      while (auto value = co_await rx.recv()) std::cout << "received '" << *value << "'\n";
    };
    co_await trpl::join(std::move(tx_fut), rx_fut);             // owned, then borrowed
  });
}
