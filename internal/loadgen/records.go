package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// The scope and form of every generated record.
const (
	benchScope = "guelmim-oued-noun"
	benchForm  = "assessment"
)

var (
	firstNames  = []string{"فاطمة الزهراء", "خديجة", "عائشة", "مريم", "حليمة", "زينب", "سعاد", "نعيمة", "محمد", "أحمد", "يوسف", "إبراهيم", "عبد الله", "الحسين", "مصطفى", "عبد الرحيم"}
	fatherNames = []string{"بنت محمد", "بنت أحمد", "بن علي", "بن الحسن", "بنت عبد القادر", "بن إبراهيم", "بنت مبارك", "بن لحسن"}
	familyNames = []string{"العلوي", "الإدريسي", "أيت باها", "بوزيد", "أوعلي", "الركيبي", "أمزيان", "الصحراوي", "بلعيد", "أيت الحاج"}
	villages    = []string{"تيغمرت، إقليم كلميم", "أسرير، إقليم كلميم", "بويزكارن، إقليم كلميم", "إفران الأطلس الصغير", "طانطان", "أسا، إقليم أسا الزاك", "سيدي إفني", "تغجيجت"}
	sectors     = []string{"catering", "crafts", "services", "agriculture"}
	projects    = map[string][]string{
		"catering":    {"مطعم صغير للوجبات السريعة في السوق الأسبوعي", "مخبزة تقليدية وحلويات للمناسبات", "عربة لبيع الشاي والمسمن"},
		"crafts":      {"ورشة خياطة وتطريز الملابس التقليدية", "صناعة الزرابي والأغطية الصوفية", "ورشة نجارة وإصلاح الأثاث"},
		"services":    {"محل لإصلاح الهواتف والحواسيب", "صالون حلاقة وتجميل", "خدمات النقل والتوصيل بين الدواوير"},
		"agriculture": {"تربية الماعز والأغنام", "زراعة الصبار وتثمين منتجاته", "تربية النحل وإنتاج العسل", "تربية الدواجن البلدية"},
	}
	incomeSources = []string{"أعمال موسمية في الفلاحة", "الخياطة في المنزل", "مساعدة من الأقارب", "بيع الخبز", "لا يوجد دخل قار"}
	noteParts     = []string{
		"الأسرة تعيش في منزل من طابق واحد مبني بالطين، والماء من البئر المشترك في الدوار.",
		"رب الأسرة خرج من السجن منذ %d سنوات ويرغب في فتح مشروع يضمن له دخلا قارا.",
		"الزوجة تعمل في الخياطة وتساهم في مصاريف البيت بحوالي %d00 درهم في الشهر.",
		"%d أطفال يتابعون دراستهم في المدرسة الابتدائية بالجماعة.",
		"المعني بالأمر تابع تكوينا مهنيا لمدة %d أشهر ولديه شهادة.",
		"الأسرة لا تملك أرضا فلاحية وتكتري المحل بثمن %d0 درهما في الشهر قرب السوق.",
		"تمت زيارة المحل المقترح والتأكد من ملاءمته للنشاط يوم %d من الشهر.",
		"يحتاج المشروع إلى معدات أساسية وتكوين في التسيير والمحاسبة البسيطة.",
		"الأب مريض منذ %d سنوات والأم هي المعيل الوحيد للأسرة.",
		"المنزل بعيد عن الطريق المعبدة بحوالي %d كيلومترات.",
		"سبق للأسرة أن استفادت من دعم المبادرة الوطنية قبل %d سنوات.",
		"الابن الأكبر عاطل عن العمل ويرغب في المشاركة في المشروع.",
	}
	// noteWords give each note a free-text remark, as investigators write
	// them: less repetitive than whole stock sentences.
	noteWords = strings.Fields("ملاحظة الأسرة المنزل السوق الدوار الجماعة المشروع الدعم العمل الدخل الأطفال المدرسة الماء الكهرباء الطريق المحل " +
		"الزبائن المعدات التكوين الخبرة الصحة المرض الدواء الجيران الموسم المطر الجفاف الماشية الأرض البئر القرض الادخار الثمن " +
		"الكراء الفاتورة النقل الحافلة المدينة كلميم طانطان أسا الجمعية التعاونية النساء الشباب الحرفة الخياطة الطبخ الحلويات " +
		"الخبز الشاي الزيت العسل الصوف الجلد الفخار النجارة الحدادة الإصلاح الهاتف الحاسوب التوصيل البيع الشراء الجودة " +
		"جيد متوسط ضعيف صعب سهل قريب بعيد جديد قديم كبير صغير كثير قليل دائما أحيانا غالبا أيضا لكن لأن مع بدون قبل بعد " +
		"يرغب يحتاج يعمل يبيع يشتري يسكن يدرس ينتظر يساعد يملك يكتري يقترح يؤكد يفضل يخاف يأمل")
	investigators = []string{"سعيد أوبلا", "نادية الحيان", "رشيد أكضيض", "سلمى بوشعيب", "عمر الناصري", "حنان أيت علي"}
)

// Assessment returns a realistic household assessment (~1 KB as JSON)
// created by device dev: one write, n = 1, clock {dev: 1}. The load
// generator pushes these, and benchmarks elsewhere use them too.
func Assessment(rng *rand.Rand, dev string, at int64) (sp.State, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return sp.State{}, err
	}
	sector := sectors[rng.IntN(len(sectors))]
	household := 1 + rng.IntN(10)
	var notes strings.Builder
	for k, i := range rng.Perm(len(noteParts))[:2] {
		if k > 0 {
			notes.WriteByte(' ')
		}
		part := noteParts[i]
		if strings.Contains(part, "%d") {
			part = fmt.Sprintf(part, 2+rng.IntN(30))
		}
		notes.WriteString(part)
	}
	for range 10 + rng.IntN(10) {
		notes.WriteByte(' ')
		notes.WriteString(noteWords[rng.IntN(len(noteWords))])
	}
	notes.WriteByte('.')
	fields := map[string]any{
		"head_name":          firstNames[rng.IntN(len(firstNames))] + " " + fatherNames[rng.IntN(len(fatherNames))] + " " + familyNames[rng.IntN(len(familyNames))],
		"cin":                "JB" + strconv.Itoa(100000+rng.IntN(900000)),
		"phone":              fmt.Sprintf("+2126%08d", rng.IntN(100_000_000)),
		"household_size":     household,
		"children_in_school": rng.IntN(household),
		"monthly_income_mad": 200 * rng.IntN(16),
		"income_source":      incomeSources[rng.IntN(len(incomeSources))],
		"sector":             sector,
		"project":            projects[sector][rng.IntN(len(projects[sector]))],
		"requested_mad":      5000 + 500*rng.IntN(150),
		"village":            villages[rng.IntN(len(villages))],
		"gps":                map[string]float64{"lat": 28.9 + rng.Float64()*0.3, "lon": -10.2 + rng.Float64()*0.4, "accuracy_m": float64(3 + rng.IntN(20))},
		"visit_date":         time.UnixMilli(at).UTC().Format("2006-01-02"),
		"notes":              notes.String(),
		"investigator":       investigators[rng.IntN(len(investigators))],
	}
	raw := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		b, err := json.Marshal(v)
		if err != nil {
			return sp.State{}, err
		}
		raw[k] = b
	}
	return sp.State{
		ID: id.String(), Form: benchForm, Scope: benchScope, Clock: sp.Clock{dev: 1},
		Writes: []sp.Write{{By: dev, N: 1, At: at, Fields: raw}},
	}, nil
}

// pushBody is the body of one push: {"device", "batch", "records"}.
type pushBody struct {
	Device  string     `json:"device"`
	Batch   string     `json:"batch"`
	Records []sp.State `json:"records"`
}

// batch is one encoded push body and what it holds.
type batch struct {
	device    int // index of the pushing device
	records   int
	body      []byte
	itemBytes int64 // the items' JSON, without the envelope and commas
}

// makeBatches builds n push bodies of size records each for the devices
// ids, assigned round robin (batch i to device i mod len(ids)), on every
// CPU. The records depend only on seed and the batch's index; the ids are
// fresh UUIDv7s.
func makeBatches(ctx context.Context, seed uint64, ids []string, n, size int) ([]batch, error) {
	at := time.Now().UnixMilli()
	out := make([]batch, n)
	_, err := parallel(ctx, n, runtime.NumCPU(), func(i int) error {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		d := i % len(ids)
		items := make([]sp.State, size)
		for k := range items {
			r, err := Assessment(rng, ids[d], at)
			if err != nil {
				return err
			}
			items[k] = r
		}
		bid, err := uuid.NewV7()
		if err != nil {
			return err
		}
		body, err := json.Marshal(pushBody{Device: ids[d], Batch: bid.String(), Records: items})
		if err != nil {
			return err
		}
		empty, err := json.Marshal(pushBody{Device: ids[d], Batch: bid.String(), Records: []sp.State{}})
		if err != nil {
			return err
		}
		out[i] = batch{device: d, records: size, body: body, itemBytes: int64(len(body) - len(empty) - (size - 1))}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// datasetBytes returns the total size of the items of the bodies as JSON.
func datasetBytes(batches []batch) int64 {
	var n int64
	for _, b := range batches {
		n += b.itemBytes
	}
	return n
}
