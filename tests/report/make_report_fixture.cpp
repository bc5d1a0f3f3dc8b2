// tests/report/make_report_fixture.cpp: writes the inputs the sae_report
// ctests run on (tests/CMakeLists.txt, "sae_report" section) into DIR:
//
//   DIR/model/        the planted SAE (tests/report/planted_data.hpp), save_pretrained
//   DIR/acts.npy      its 200 planted rows, DIR/tokens.npy, DIR/vocab.json
//   DIR/synthetic.npy 2048 rows of the synthetic data sae_train trains on
//                     when given no --data (D = 256), for a report on a
//                     model sae_train wrote
//
// Generated at test time, never committed.
#include <iostream>
#include <string>

#include <sae/data/synthetic.hpp>
#include <sae/io.hpp>

#include "planted_data.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_report_fixture DIR\n";
    return 2;
  }
  try {
    const std::string dir = argv[1];
    std::filesystem::create_directories(dir);
    sae_test::planted::write_files(dir);
    sae::save_pretrained(sae_test::planted::model(), dir + "/model");
    // sae_train's synthetic set (examples/sae_train.cpp: D = 256, 512 features, ~5 active).
    sae::SyntheticSuperposition<float> synthetic(256, 512, 5.0, 1);
    sae::save_npy(dir + "/synthetic.npy", synthetic.sample(2048));
    std::cout << "wrote the report fixture to " << dir << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "make_report_fixture: " << e.what() << "\n";
    return 1;
  }
}
