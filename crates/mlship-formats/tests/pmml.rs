//! PMML models and features no writer in the corpus produces (Scorecard, GeneralRegressionModel,
//! threshold and simplemax networks), checked on small documents written from the PMML 4.4
//! specification, against values worked out by hand.

use mlship_model::{Column, ColumnData, Frame, Predictions};

fn doc(dictionary: &str, model: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0"?><PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/><DataDictionary>{dictionary}</DataDictionary>{model}</PMML>"#
    )
    .into_bytes()
}

fn nums(name: &str, v: &[f64]) -> Column {
    Column::new(name, ColumnData::Float(v.to_vec()))
}

fn strs(name: &str, v: &[&str]) -> Column {
    Column::new(
        name,
        ColumnData::Str(v.iter().map(|s| Some(s.to_string())).collect()),
    )
}

fn values(out: &mlship_model::Output) -> Vec<f64> {
    match &out.predictions {
        Predictions::Values(v) => v.clone(),
        other => panic!("{other:?}"),
    }
}

fn labels(out: &mlship_model::Output) -> Vec<String> {
    match out.labels() {
        Some(l) => l.iter().map(ToString::to_string).collect(),
        None => panic!("{:?}", out.predictions),
    }
}

#[test]
fn a_scorecard_adds_the_first_matching_attribute_of_each_characteristic() {
    let m = mlship_formats::load(&doc(
        r#"<DataField name="age" optype="continuous" dataType="double"/>
           <DataField name="job" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/></DataField>
           <DataField name="score" optype="continuous" dataType="double"/>"#,
        r#"<Scorecard functionName="regression" initialScore="100" useReasonCodes="false">
             <MiningSchema><MiningField name="age"/><MiningField name="job"/><MiningField name="score" usageType="predicted"/></MiningSchema>
             <Characteristics>
               <Characteristic name="ageScore">
                 <Attribute partialScore="5"><SimplePredicate field="age" operator="lessThan" value="30"/></Attribute>
                 <Attribute partialScore="12"><SimplePredicate field="age" operator="lessThan" value="60"/></Attribute>
                 <Attribute partialScore="-3"><True/></Attribute>
               </Characteristic>
               <Characteristic name="jobScore">
                 <Attribute partialScore="7"><SimplePredicate field="job" operator="equal" value="a"/></Attribute>
                 <Attribute partialScore="1"><SimplePredicate field="job" operator="equal" value="b"/></Attribute>
               </Characteristic>
             </Characteristics>
           </Scorecard>"#,
    ))
    .unwrap();
    let f = Frame::new(vec![
        nums("age", &[20.0, 45.0, 70.0]),
        strs("job", &["a", "b", "b"]),
    ])
    .unwrap();
    assert_eq!(values(&m.predict(&f).unwrap()), [112.0, 113.0, 98.0]);
}

const GLM_DICT: &str = r#"<DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="g" optype="categorical" dataType="string"><Value value="u"/><Value value="v"/></DataField>
    <DataField name="y" optype="continuous" dataType="double"/>"#;

#[test]
fn a_generalized_linear_model_applies_its_link_to_factors_and_covariates() {
    let m = mlship_formats::load(&doc(
        GLM_DICT,
        r#"<GeneralRegressionModel functionName="regression" modelType="generalizedLinear" linkFunction="log">
             <MiningSchema><MiningField name="x"/><MiningField name="g"/><MiningField name="y" usageType="predicted"/></MiningSchema>
             <ParameterList><Parameter name="p0"/><Parameter name="p1"/><Parameter name="p2"/><Parameter name="p3"/></ParameterList>
             <FactorList><Predictor name="g"/></FactorList>
             <CovariateList><Predictor name="x"/></CovariateList>
             <PPMatrix>
               <PPCell value="v" predictorName="g" parameterName="p1"/>
               <PPCell value="1" predictorName="x" parameterName="p2"/>
               <PPCell value="2" predictorName="x" parameterName="p3"/>
             </PPMatrix>
             <ParamMatrix>
               <PCell parameterName="p0" beta="0.5"/>
               <PCell parameterName="p1" beta="-1"/>
               <PCell parameterName="p2" beta="0.25"/>
               <PCell parameterName="p3" beta="0.1"/>
             </ParamMatrix>
           </GeneralRegressionModel>"#,
    ))
    .unwrap();
    let f = Frame::new(vec![nums("x", &[2.0, 2.0]), strs("g", &["u", "v"])]).unwrap();
    let got = values(&m.predict(&f).unwrap());
    // eta = 0.5 - [g = v] + 0.25 x + 0.1 x^2; y = exp(eta).
    let want = [(0.5f64 + 0.5 + 0.4).exp(), (0.5f64 - 1.0 + 0.5 + 0.4).exp()];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
}

#[test]
fn a_multinomial_logistic_model_gives_softmax_probabilities_against_its_reference() {
    let m = mlship_formats::load(&doc(
        r#"<DataField name="x" optype="continuous" dataType="double"/>
           <DataField name="c" optype="categorical" dataType="string"><Value value="lo"/><Value value="mid"/><Value value="hi"/></DataField>"#,
        r#"<GeneralRegressionModel functionName="classification" modelType="multinomialLogistic" targetReferenceCategory="lo">
             <MiningSchema><MiningField name="x"/><MiningField name="c" usageType="predicted"/></MiningSchema>
             <ParameterList><Parameter name="p0"/><Parameter name="p1"/></ParameterList>
             <CovariateList><Predictor name="x"/></CovariateList>
             <PPMatrix><PPCell value="1" predictorName="x" parameterName="p1"/></PPMatrix>
             <ParamMatrix>
               <PCell targetCategory="mid" parameterName="p0" beta="1"/>
               <PCell targetCategory="mid" parameterName="p1" beta="0.5"/>
               <PCell targetCategory="hi" parameterName="p0" beta="-2"/>
               <PCell targetCategory="hi" parameterName="p1" beta="2"/>
             </ParamMatrix>
           </GeneralRegressionModel>"#,
    ))
    .unwrap();
    let f = Frame::new(vec![nums("x", &[0.0, 3.0])]).unwrap();
    let out = m.predict(&f).unwrap();
    let p = out.probabilities.clone().unwrap();
    for (r, x) in [0.0f64, 3.0].iter().enumerate() {
        let e = [0.0f64, 1.0 + 0.5 * x, -2.0 + 2.0 * x].map(f64::exp);
        let s: f64 = e.iter().sum();
        for k in 0..3 {
            assert!((p.get(r, k) - e[k] / s).abs() < 1e-12);
        }
    }
    assert_eq!(labels(&out), ["mid", "hi"]);
}

#[test]
fn a_documents_own_verification_records_are_checked_when_it_loads() {
    let model = |score: &str| {
        doc(
            r#"<DataField name="x" optype="continuous" dataType="double"/><DataField name="y" optype="continuous" dataType="double"/>"#,
            &format!(
                r#"<RegressionModel functionName="regression">
                     <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="predicted"/></MiningSchema>
                     <RegressionTable intercept="1"><NumericPredictor name="x" coefficient="2"/></RegressionTable>
                     <ModelVerification recordCount="2">
                       <VerificationFields><VerificationField field="x"/><VerificationField field="y" precision="1e-9"/></VerificationFields>
                       <InlineTable><row><x>1</x><y>3</y></row><row><x>2.5</x><y>{score}</y></row></InlineTable>
                     </ModelVerification>
                   </RegressionModel>"#
            ),
        )
    };
    assert!(mlship_formats::load(&model("6")).is_ok());
    let e = mlship_formats::load(&model("6.5")).unwrap_err().to_string();
    assert!(
        e.contains("ModelVerification record 2") && e.contains("6.5"),
        "{e}"
    );
}

/// A tree of 100 records splitting on x (60 left, 40 right), the left side on z (45, 15).
fn spread_tree(strategy: &str, function: &str) -> Vec<u8> {
    let classify = function == "classification";
    let target = if classify {
        r#"<DataField name="y" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/></DataField>"#
    } else {
        r#"<DataField name="y" optype="continuous" dataType="double"/>"#
    };
    let leaf = |a: f64, b: f64| {
        if classify {
            format!(
                r#"<ScoreDistribution value="a" recordCount="{a}"/><ScoreDistribution value="b" recordCount="{b}"/>"#
            )
        } else {
            String::new()
        }
    };
    doc(
        &format!(
            r#"<DataField name="x" optype="continuous" dataType="double"/><DataField name="z" optype="continuous" dataType="double"/>{target}"#
        ),
        &format!(
            r#"<TreeModel functionName="{function}" missingValueStrategy="{strategy}">
                 <MiningSchema><MiningField name="x"/><MiningField name="z"/><MiningField name="y" usageType="predicted"/></MiningSchema>
                 <Node recordCount="100"><True/>
                   <Node recordCount="60"><SimplePredicate field="x" operator="lessThan" value="0"/>
                     <Node recordCount="45" score="{s1}"><SimplePredicate field="z" operator="lessThan" value="0"/>{l1}</Node>
                     <Node recordCount="15" score="{s2}"><True/>{l2}</Node>
                   </Node>
                   <Node recordCount="40" score="{s3}"><True/>{l3}</Node>
                 </Node>
               </TreeModel>"#,
            s1 = if function == "classification" {
                "a"
            } else {
                "1"
            },
            s2 = if function == "classification" {
                "b"
            } else {
                "2"
            },
            s3 = if function == "classification" {
                "b"
            } else {
                "10"
            },
            l1 = leaf(40.0, 5.0),
            l2 = leaf(5.0, 10.0),
            l3 = leaf(10.0, 30.0),
        ),
    )
}

#[test]
fn weighted_confidence_and_aggregate_nodes_follow_every_open_child() {
    let rows = Frame::new(vec![
        nums("x", &[f64::NAN, -1.0, -1.0]),
        nums("z", &[-1.0, f64::NAN, -1.0]),
    ])
    .unwrap();
    // weightedConfidence, regression: x missing: 0.6 * 1 + 0.4 * 10; z missing: 0.75 * 1 + 0.25 * 2.
    let m = mlship_formats::load(&spread_tree("weightedConfidence", "regression")).unwrap();
    let v = values(&m.predict(&rows).unwrap());
    assert!(
        (v[0] - 4.6).abs() < 1e-12 && (v[1] - 1.25).abs() < 1e-12 && v[2] == 1.0,
        "{v:?}"
    );
    // aggregateNodes, classification: x missing adds the counts of leaves 1 and 3: a 50, b 35.
    let m = mlship_formats::load(&spread_tree("aggregateNodes", "classification")).unwrap();
    let p = m.predict(&rows).unwrap().probabilities.unwrap();
    assert!((p.get(0, 0) - 50.0 / 85.0).abs() < 1e-12, "{p:?}");
    // z missing: leaves 1 and 2: a 45, b 15.
    assert!((p.get(1, 0) - 45.0 / 60.0).abs() < 1e-12, "{p:?}");
    assert!((p.get(2, 0) - 40.0 / 45.0).abs() < 1e-12, "{p:?}");
}

#[test]
fn user_defined_functions_are_applied_with_their_parameters() {
    let m = mlship_formats::load(
        r#"<?xml version="1.0"?><PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>
            <DataDictionary><DataField name="x" optype="continuous" dataType="double"/><DataField name="y" optype="continuous" dataType="double"/></DataDictionary>
            <TransformationDictionary>
              <DefineFunction name="affine" optype="continuous" dataType="double">
                <ParameterField name="v"/><ParameterField name="k"/>
                <Apply function="+"><Apply function="*"><FieldRef field="v"/><FieldRef field="k"/></Apply><Constant>1</Constant></Apply>
              </DefineFunction>
              <DerivedField name="t" optype="continuous" dataType="double"><Apply function="affine"><FieldRef field="x"/><Constant>3</Constant></Apply></DerivedField>
            </TransformationDictionary>
            <RegressionModel functionName="regression">
              <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="predicted"/></MiningSchema>
              <RegressionTable intercept="0"><NumericPredictor name="t" coefficient="2"/></RegressionTable>
            </RegressionModel></PMML>"#
            .as_bytes(),
    )
    .unwrap();
    let out = m
        .predict(&Frame::new(vec![nums("x", &[1.0, -2.0])]).unwrap())
        .unwrap();
    assert_eq!(values(&out), [8.0, -10.0]);
}

/// A call that could only fail when scored (a function no one defines, a wrong number of
/// arguments) is refused when the document loads, naming the function; `not` with no argument
/// used to load and then panic on the first row.
#[test]
fn calls_are_checked_when_the_document_loads() {
    let with = |apply: &str| {
        format!(
            r#"<?xml version="1.0"?><PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>
            <DataDictionary><DataField name="x" optype="continuous" dataType="double"/><DataField name="y" optype="continuous" dataType="double"/></DataDictionary>
            <TransformationDictionary>
              <DefineFunction name="twice" optype="continuous" dataType="double"><ParameterField name="v"/><Apply function="*"><FieldRef field="v"/><Constant>2</Constant></Apply></DefineFunction>
              <DerivedField name="t" optype="continuous" dataType="double">{apply}</DerivedField>
            </TransformationDictionary>
            <RegressionModel functionName="regression">
              <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="predicted"/></MiningSchema>
              <RegressionTable intercept="0"><NumericPredictor name="t" coefficient="1"/></RegressionTable>
            </RegressionModel></PMML>"#
        )
    };
    let refused = [
        (
            r#"<Apply function="not"/>"#,
            "takes 1 arguments, this call gives 0",
        ),
        (
            r#"<Apply function="isIn"><FieldRef field="x"/></Apply>"#,
            "at least 2",
        ),
        (
            r#"<Apply function="if"><Constant>1</Constant><Constant>1</Constant><Constant>1</Constant><Constant>1</Constant></Apply>"#,
            "2 to 3",
        ),
        (r#"<Apply function="twice"/>"#, "\"twice\" takes 1"),
        (
            r#"<Apply function="cosh"><FieldRef field="x"/></Apply>"#,
            "\"cosh\"",
        ),
    ];
    for (apply, needle) in refused {
        let e = mlship_formats::load(with(apply).as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{apply} loaded"));
        assert!(e.to_string().contains(needle), "{apply}: {e}");
    }
    let m = mlship_formats::load(
        with(r#"<Apply function="+"><Apply function="twice"><FieldRef field="x"/></Apply><Apply function="if"><Apply function="not"><Apply function="greaterThan"><FieldRef field="x"/><Constant>0</Constant></Apply></Apply><Constant>10</Constant></Apply></Apply>"#).as_bytes(),
    )
    .unwrap();
    let out = m
        .predict(&Frame::new(vec![nums("x", &[1.0, -2.0])]).unwrap())
        .unwrap();
    // x = 1: `if` without an else is missing, and so is the sum; x = -2: 2 * -2 + 10.
    let v = values(&out);
    assert!(v[0].is_nan() && v[1] == 6.0, "{v:?}");
}

/// An ordinal model (cumulative link over the target's ordered values, intercepts per category,
/// shared slopes), in every cumulative link. The expected probabilities are JPMML-Evaluator's
/// (through the `jpmml_evaluator` 0.16.0 package) on the same document and rows.
#[test]
fn an_ordinal_model_gives_the_steps_of_its_cumulative_probabilities() {
    let expected: [(&str, [[f64; 3]; 3]); 5] = [
        (
            "logit",
            [
                [0.2689414213699951, 0.3535179098318595, 0.3775406687981454],
                [0.09112296101485616, 0.21890255785753138, 0.6899744811276125],
                [0.6224593312018547, 0.2583377467760276, 0.11920292202211769],
            ],
        ),
        (
            "probit",
            [
                [0.15865525393145702, 0.532807207342556, 0.308537538725987],
                [
                    0.010724110021675767,
                    0.20113128856172102,
                    0.7881446014166031,
                ],
                [0.6914624612740132, 0.28578740677780756, 0.02275013194817921],
            ],
        ),
        (
            "cloglog",
            [
                [0.3077993724446536, 0.4999049820073814, 0.19229564554796497],
                [0.0953967631403857, 0.2665470702775956, 0.6380561665820187],
                [
                    0.8077043544520351,
                    0.19167766655863372,
                    0.000617978989331136,
                ],
            ],
        ),
        (
            "loglog",
            [
                [0.06598803584531254, 0.4792511760472925, 0.45476078810739495],
                [
                    4.658730611926288e-05,
                    0.10796239039047228,
                    0.8919910223034084,
                ],
                [0.5452392118926052, 0.3281838066005115, 0.12657698150688335],
            ],
        ),
        (
            "cauchit",
            [
                [0.25, 0.39758361765043326, 0.35241638234956674],
                [0.13054758708862274, 0.15467570038865447, 0.7147767125227228],
                [0.6475836176504334, 0.20483276469913336, 0.14758361765043326],
            ],
        ),
    ];
    for (link, want) in expected {
        let m = mlship_formats::load(&doc(
            r#"<DataField name="x" optype="continuous" dataType="double"/>
               <DataField name="g" optype="categorical" dataType="string"><Value value="u"/><Value value="v"/></DataField>
               <DataField name="c" optype="ordinal" dataType="string"><Value value="lo"/><Value value="mid"/><Value value="hi"/></DataField>"#,
            &format!(
                r#"<GeneralRegressionModel functionName="classification" modelType="ordinalMultinomial" cumulativeLink="{link}">
                 <MiningSchema><MiningField name="x"/><MiningField name="g"/><MiningField name="c" usageType="predicted"/></MiningSchema>
                 <ParameterList><Parameter name="p0"/><Parameter name="p1"/><Parameter name="p2"/></ParameterList>
                 <FactorList><Predictor name="g"/></FactorList>
                 <CovariateList><Predictor name="x"/></CovariateList>
                 <PPMatrix><PPCell value="1" predictorName="x" parameterName="p1"/><PPCell value="v" predictorName="g" parameterName="p2"/></PPMatrix>
                 <ParamMatrix>
                   <PCell targetCategory="lo" parameterName="p0" beta="-1"/>
                   <PCell targetCategory="mid" parameterName="p0" beta="0.5"/>
                   <PCell parameterName="p1" beta="-0.8"/>
                   <PCell parameterName="p2" beta="0.3"/>
                 </ParamMatrix>
               </GeneralRegressionModel>"#
            ),
        ))
        .unwrap_or_else(|e| panic!("{link}: {e}"));
        let f = Frame::new(vec![
            nums("x", &[0.0, 2.0, -1.5]),
            strs("g", &["u", "v", "v"]),
        ])
        .unwrap();
        let out = m.predict(&f).unwrap();
        let p = out.probabilities.clone().unwrap();
        for (r, row) in want.iter().enumerate() {
            for (k, w) in row.iter().enumerate() {
                assert!(
                    (p.get(r, k) - w).abs() < 1e-12,
                    "{link} row {r} class {k}: {} against {w}",
                    p.get(r, k)
                );
            }
        }
        let top: Vec<&str> = want
            .iter()
            .map(|row| {
                ["lo", "mid", "hi"][(0..3).fold(0, |b, k| if row[k] > row[b] { k } else { b })]
            })
            .collect();
        assert_eq!(labels(&out), top, "{link}");
    }
}

/// A stratified Cox regression gives the cumulative hazard at the row's end time: the stratum's
/// baseline step times exp(beta (x - reference)); past the stratum's maximum time, no prediction.
/// The expected values are JPMML-Evaluator's on the same document and rows.
#[test]
fn a_cox_regression_scales_its_strata_baseline_hazards() {
    let text = String::from_utf8(doc(
        r#"<DataField name="x" optype="continuous" dataType="double"/>
           <DataField name="g" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/></DataField>
           <DataField name="s" optype="categorical" dataType="string"><Value value="m"/><Value value="f"/></DataField>
           <DataField name="t" optype="continuous" dataType="double"/>
           <DataField name="y" optype="continuous" dataType="double"/>"#,
        r#"<GeneralRegressionModel functionName="regression" modelType="CoxRegression" endTimeVariable="t" baselineStrataVariable="s">
             <MiningSchema><MiningField name="x"/><MiningField name="g"/><MiningField name="s"/><MiningField name="t"/><MiningField name="y" usageType="predicted"/></MiningSchema>
             <ParameterList><Parameter name="p1" referencePoint="0.5"/><Parameter name="p2" referencePoint="0.25"/></ParameterList>
             <FactorList><Predictor name="g"/></FactorList>
             <CovariateList><Predictor name="x"/></CovariateList>
             <PPMatrix><PPCell value="1" predictorName="x" parameterName="p1"/><PPCell value="b" predictorName="g" parameterName="p2"/></PPMatrix>
             <ParamMatrix><PCell parameterName="p1" beta="0.7"/><PCell parameterName="p2" beta="-0.4"/></ParamMatrix>
             <BaseCumHazardTables>
               <BaselineStratum value="m" maxTime="10"><BaselineCell time="1" cumHazard="0.1"/><BaselineCell time="3" cumHazard="0.25"/></BaselineStratum>
               <BaselineStratum value="f" maxTime="5"><BaselineCell time="2" cumHazard="0.2"/><BaselineCell time="4" cumHazard="0.5"/></BaselineStratum>
             </BaseCumHazardTables>
           </GeneralRegressionModel>"#,
    ))
    .unwrap();
    let m = mlship_formats::load(text.as_bytes()).unwrap();
    let f = Frame::new(vec![
        nums("x", &[0.0, 1.0, 2.0, 1.0, -1.0, 1.0, 1.0]),
        strs("g", &["a", "b", "a", "b", "b", "a", "a"]),
        strs("s", &["m", "m", "f", "f", "m", "f", "f"]),
        nums("t", &[1.0, 3.0, 2.5, 4.0, 9.0, 6.0, 1.0]),
    ])
    .unwrap();
    let got = values(&m.predict(&f).unwrap());
    let want = [
        0.0778800783071405,
        0.262817774094006,
        0.6316385819379535,
        0.525635548188012,
        0.06481006516147288,
        f64::NAN,
        0.0,
    ];
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() < 1e-12 || (g.is_nan() && w.is_nan()),
            "row {i}: {g} against {w}"
        );
    }
    // A parameter listed twice: the last one counts, as a lookup by name would find it.
    let twice = text.replace(
        r#"<Parameter name="p2" referencePoint="0.25"/>"#,
        r#"<Parameter name="p2" referencePoint="0.25"/><Parameter name="p2" referencePoint="0.25"/>"#,
    );
    assert_ne!(twice, text);
    let again = values(
        &mlship_formats::load(twice.as_bytes())
            .unwrap()
            .predict(&f)
            .unwrap(),
    );
    assert_eq!(format!("{again:?}"), format!("{got:?}"));
}

/// A scorecard with reason codes (fixtures/pmml/scorecard_reasons): its `reasonCode` output fields
/// come out as extra outputs, ranked as JPMML-Evaluator ranks them (expected.json is its answer,
/// from fixtures/pmml/generate_expected.py); with `pointsAbove`, points count the other way.
#[test]
fn a_scorecard_ranks_its_reason_codes_as_jpmml_does() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/pmml/scorecard_reasons");
    let pmml = std::fs::read_to_string(dir.join("model.pmml")).unwrap();
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let f = Frame::new(vec![
        nums("age", &[20.0, 45.0, 70.0, 45.0]),
        strs("job", &["a", "b", "b", "a"]),
        nums("inc", &[500.0, 2000.0, 100.0, 5000.0]),
    ])
    .unwrap();
    let out = mlship_formats::load(pmml.as_bytes())
        .unwrap()
        .predict(&f)
        .unwrap();
    assert_eq!(values(&out), [112.0, 117.0, 98.0, 123.0]);
    let names: Vec<&str> = out.extra.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["rc1", "rc2", "rc3", "twice"]);
    for (name, got) in &out.extra[..3] {
        let want: Vec<Option<String>> = serde_json::from_value(exp[name].clone()).unwrap();
        assert_eq!(got, &want, "{name}");
    }
    // A transformed value comes out as text.
    let twice: Vec<f64> = out.extra[3]
        .1
        .iter()
        .map(|v| v.as_deref().unwrap().parse().unwrap())
        .collect();
    let want: Vec<f64> = serde_json::from_value(exp["twice"].clone()).unwrap();
    assert_eq!(twice, want);
    // pointsAbove (JPMML: no code in rows 0 and 2, whose points are all negative).
    let above = pmml.replace(
        r#"reasonCodeAlgorithm="pointsBelow""#,
        r#"reasonCodeAlgorithm="pointsAbove""#,
    );
    let out = mlship_formats::load(above.as_bytes())
        .unwrap()
        .predict(&f)
        .unwrap();
    let s = |v: &[Option<&str>]| v.iter().map(|x| x.map(str::to_string)).collect::<Vec<_>>();
    assert_eq!(
        out.extra[0].1,
        s(&[None, Some("AGE_MID"), None, Some("AGE_MID")])
    );
    assert_eq!(out.extra[1].1, s(&[None, Some("AGE"), None, Some("AGE")]));
    assert_eq!(out.extra[2].1, s(&[None, None, None, None]));
}

/// A network whose neurons, activations and normalizations are resolved when it loads: a
/// threshold layer, a simplemax layer, and a Target that rounds. Worked out by hand: x = 1 gives
/// neurons (1, 0), then (3, 1) normalised to 0.75, times 10, rounded: 8; x = 0 gives (0, 1),
/// then (1, 2): 1/3, times 10: 3. What cannot run is refused when the document loads.
#[test]
fn a_network_is_numbered_and_checked_when_it_loads() {
    let net = |activation: &str, from: &str, cast: &str| {
        doc(
            r#"<DataField name="x" optype="continuous" dataType="double"/><DataField name="y" optype="continuous" dataType="double"/>"#,
            &format!(
                r#"<NeuralNetwork functionName="regression" activationFunction="{activation}" threshold="0.5">
                 <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="predicted"/></MiningSchema>
                 <Targets><Target field="y" rescaleFactor="10" castInteger="{cast}"/></Targets>
                 <NeuralInputs><NeuralInput id="0"><DerivedField optype="continuous" dataType="double"><FieldRef field="x"/></DerivedField></NeuralInput></NeuralInputs>
                 <NeuralLayer>
                   <Neuron id="1" bias="0"><Con from="0" weight="1"/></Neuron>
                   <Neuron id="2" bias="1"><Con from="0" weight="-1"/></Neuron>
                 </NeuralLayer>
                 <NeuralLayer activationFunction="identity" normalizationMethod="simplemax">
                   <Neuron id="3" bias="1"><Con from="{from}" weight="2"/></Neuron>
                   <Neuron id="4" bias="1"><Con from="2" weight="1"/></Neuron>
                 </NeuralLayer>
                 <NeuralOutputs><NeuralOutput outputNeuron="3"><DerivedField optype="continuous" dataType="double"><FieldRef field="y"/></DerivedField></NeuralOutput></NeuralOutputs>
               </NeuralNetwork>"#
            ),
        )
    };
    let m = mlship_formats::load(&net("threshold", "1", "round")).unwrap();
    let out = m
        .predict(&Frame::new(vec![nums("x", &[1.0, 0.0])]).unwrap())
        .unwrap();
    assert_eq!(values(&out), [8.0, 3.0]);
    for (bad, needle) in [
        (
            net("quadratic", "1", "round"),
            "the activation function \"quadratic\"",
        ),
        (net("threshold", "4", "round"), "reads unknown \"4\""),
        (
            net("threshold", "1", "truncate"),
            "castInteger=\"truncate\"",
        ),
    ] {
        let Err(e) = mlship_formats::load(&bad) else {
            panic!("loaded a network that names {needle}");
        };
        assert!(e.to_string().contains(needle), "{e}");
    }
}
