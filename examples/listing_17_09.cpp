// Listing 17-9: an async channel inside one future: send "hi" (never waits), await recv().
// Prints `received 'hi'` at once and exits; everything runs in order, no concurrency yet.
#include <string>
#include <trpl/trpl.hpp>

#include "println.hpp"

namespace listing_17_09 {

trpl::Task<> main_future() {
  auto [tx, rx] = trpl::channel<std::string>();

  std::string val = "hi";
  tx.send(std::move(val)).value();

  // recv() yields std::optional: the book's `.unwrap()` on the Option is `.value()`.
  std::string received = (co_await rx.recv()).value();
  // The seed text printed `Got: {received}`; the book's listing file prints this line.
  println("received '" + received + "'");
}

}  // namespace listing_17_09

#ifndef TRPL_LISTINGS_AS_LIBRARY
int main() { trpl::run(listing_17_09::main_future); }
#endif
