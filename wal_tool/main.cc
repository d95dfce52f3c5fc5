// wal_tool: see wal_tool/wal_tool.h and README.md ("wal_tool").

#include <iostream>
#include <string>
#include <vector>

#include "wal_tool/wal_tool.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return segwal::wal_tool::Run(args, std::cout, std::cerr);
}
